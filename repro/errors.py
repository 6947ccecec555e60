"""The one exception type a user of the suite meets: every refusal is a ReproError whose message is
one line that says what is wrong (the CLI prints it as `error: ...` and exits with status 2)."""


class ReproError(Exception):
    """A bad setting, a missing or corrupt dataset, an unknown experiment: one line for the user."""


class ConfigError(ReproError, ValueError):
    """A configuration value that cannot be used; the message is one line for the user."""
