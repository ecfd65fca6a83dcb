"""A venue account's key and secret, from where a config says they are: never the config
file itself. The key comes from an environment variable; the secret from another one, or
from a file that only its owner can read (an Ed25519 PEM key, say). Every venue uses this.
"""

from __future__ import annotations

import os
from pathlib import Path

from connector.errors import ConfigError


def read_key_and_secret(section: str, path: str, key_env: str, secret_env: str = "",
                        secret_file: str = "") -> tuple[str, str]:  # fmt: skip
    """(key, secret), or a ConfigError naming the variable or file and the config.

    Args:
        section: the config section naming them (for the message).
        path: the config file; a relative `secret_file` is taken from its folder.
    """
    key = os.environ.get(key_env)
    if not key:
        raise ConfigError(f"{path}: environment variable ${key_env} ({section}) is not set")
    if secret_file:
        f = Path(secret_file).expanduser()
        if not f.is_absolute():
            f = Path(path).parent / f
        try:
            if f.stat().st_mode & 0o077:
                raise ConfigError(f"{path}: {section}.secret_file {f} is readable by others; "
                                  f"chmod 600 it")  # fmt: skip
            secret = f.read_text().strip()
        except OSError as e:
            raise ConfigError(f"{path}: {section}.secret_file {f}: {e.strerror}") from None
        if not secret:
            raise ConfigError(f"{path}: {section}.secret_file {f} is empty")
        return key, secret
    secret = os.environ.get(secret_env)
    if not secret:
        raise ConfigError(f"{path}: environment variable ${secret_env} ({section}) is not set")
    return key, secret
