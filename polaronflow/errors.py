"""The exception types a polaronflow user sees.

Every error raised on bad input derives from :class:`PolaronflowError`; the CLI prints its
message on one line and exits with :attr:`PolaronflowError.exit_code` (2 for bad input).
Messages name the offending input and say what would be valid.
"""

from __future__ import annotations


class PolaronflowError(Exception):
    """Base class of every error polaronflow raises on purpose."""

    exit_code: int = 2


class InputError(PolaronflowError, ValueError):
    """A value given by the user is not valid (unknown ion, out-of-range index, ...)."""


class HostStructureError(InputError):
    """A host structure is not a WO3-like (ReO3-type) framework."""


class DopingError(InputError):
    """A dopant cannot be placed as asked (no such cavity, too many protons, ...)."""


class PolaronSeedError(InputError):
    """Polaron seeds are inconsistent with the structure or with the electrons donated."""


class ReferencePhaseError(InputError):
    """No reference structure is known for a requested phase."""


class WorkflowError(PolaronflowError):
    """A workflow cannot be built from the options given (bad U schedule, ...)."""


class ConfigError(PolaronflowError):
    """A configuration file (LaunchPad, JobStore, settings) is missing or unreadable."""


class RunReadError(PolaronflowError):
    """A VASP output file is missing, truncated, unreadable or of the wrong kind."""


class RunQualityError(PolaronflowError):
    """A run is readable but unusable for the analysis asked (unconverged, ISPIN 1, ...)."""


class MismatchError(RunQualityError):
    """Runs that are combined were made with different functionals, U, POTCARs, ..."""
