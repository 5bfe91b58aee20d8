"""Layer 3: the reproduction checks on real finished runs, only with ``--vasp-runs DIR``."""

from polaronflow.testing.reproduction_checks import reproduction, test_paper_value_reproduced

__all__ = ["reproduction", "test_paper_value_reproduced"]
