"""Exceptions that carry a one-line message for the user.

Every error a user can cause (bad input file, unknown element, space group out of range, corrupt
checkpoint, ...) is raised as a subclass of :class:`SymmcdError`. The CLI prints its message on
one line and exits with status 2; library users can catch it.
"""


class SymmcdError(Exception):
    """Base class of every user-facing symmcd error."""


class InputError(SymmcdError, ValueError):
    """A user-supplied value or file is invalid (message names the input)."""


class StructureError(InputError):
    """A crystal structure cannot be represented (disorder, unknown element, broken CIF...)."""


class SymmetryError(SymmcdError):
    """A symmetry search or Wyckoff assignment failed or gave an inconsistent answer."""


class CheckpointError(InputError):
    """A checkpoint is missing, corrupt, or of an incompatible format."""


class ConfigError(InputError):
    """A configuration has an unknown key or a value of the wrong type."""
