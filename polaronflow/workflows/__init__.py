"""jobflow/atomate2 workflows of the paper's SCAN+U campaign: what to run, never how to parse.

Modules: :mod:`~polaronflow.workflows.sets` (input sets), :mod:`~polaronflow.workflows.ramp`
(U ramp), :mod:`~polaronflow.workflows.convergence` (k-point loop),
:mod:`~polaronflow.workflows.campaign` (the whole campaign), :mod:`~polaronflow.workflows.submit`
(LaunchPad / JobStore / local runs), :mod:`~polaronflow.workflows.dryrun` (``inputs``),
:mod:`~polaronflow.workflows.handlers` (custodian), :mod:`~polaronflow.workflows.configfiles`
(``init``). Nothing is imported here so that ``import polaronflow.workflows`` stays cheap.
"""
