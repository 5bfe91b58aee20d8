"""jobflow/atomate2 workflows of the paper's SCAN+U campaign: what to run, never how to parse.

Three layers, each importing only the ones before it:

* :mod:`polaronflow.workflows.vasp` — one VASP job: input sets, makers, custodian handlers,
  the polaron check;
* :mod:`polaronflow.workflows.campaign` — options, the typed plan, the U-ramp and k-point
  makers, the campaign Maker, the dry run, the fingerprint and the analysis job;
* :mod:`polaronflow.workflows.runtime` — stores, submission, launch, status, collect and the
  configuration templates.

Nothing is imported here so that ``import polaronflow.workflows`` stays cheap.
"""
