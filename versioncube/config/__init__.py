"""The settings: the model (every setting declared once), loading and merging configurations,
checking values, the generated reference, and the target outline the cube remembers."""

from versioncube.config.loading import ConfigLike, load_config, merge_configs
from versioncube.config.model import Config

__all__ = ["Config", "ConfigLike", "load_config", "merge_configs"]
