"""Error types with messages meant for the person running the node."""


class LightGlueRosError(RuntimeError):
    """Base class: everything the package raises on purpose."""


class InputError(LightGlueRosError, ValueError):
    """A frame cannot be processed (encoding, size, pairing); the node logs it and goes on."""


class ModelError(LightGlueRosError):
    """A model file or manifest is missing, corrupt or does not fit the configuration."""


class ConfigError(LightGlueRosError, ValueError):
    """A parameter has a value outside what it allows."""
