"""Optional packages: importing one that is missing is a one-line error naming the extra.

`pip install climbstream` installs what streaming local MDS/tar needs; the rest comes in
extras (README, "Install"). A missing one used to surface as a ModuleNotFoundError
traceback (exit 1) from deep inside a command; `require` turns it into a ConfigError
(exit 2 from the CLI) that says which extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from climbstream.errors import ConfigError

# module -> (pip package, climbstream extra)
EXTRAS = {
    "matplotlib": ("matplotlib", "plots"),
    "streaming": ("mosaicml-streaming", "mds"),
    "boto3": ("boto3", "s3"),
    "botocore": ("boto3", "s3"),
    "fsspec": ("fsspec", "fsspec"),
    "tokenizers": ("tokenizers", "tokenizers"),
    "pyarrow": ("pyarrow", "parquet"),
    "tensorboard": ("tensorboard", "tb"),
    "torchdata": ("torchdata", "torchdata"),
    "wandb": ("wandb", "wandb"),
    "transformers": ("transformers", "hf"),
    "accelerate": ("accelerate", "accelerate"),
    "pytorch_lightning": ("pytorch-lightning", "lightning"),
    "torch.utils.tensorboard": ("tensorboard", "tb"),
}


class MissingExtraError(ConfigError):
    """An optional package a feature needs is not installed (names the extra)."""


def require(module: str, what: str) -> ModuleType:
    """Import `module` (e.g. "matplotlib.figure") for `what` (e.g. "climbstream report"), or
    raise MissingExtraError naming the package and the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        package, extra = EXTRAS.get(module) or EXTRAS.get(top, (top, None))
        hint = f"pip install 'climbstream[{extra}]'" if extra else f"pip install {package}"
        raise MissingExtraError(f"{what} needs {package}, which is not installed ({err}); {hint}") from None
