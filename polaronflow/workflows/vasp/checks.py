"""Polaron checks after each U-ramp step: a delocalised polaron is never accepted silently.

Lowering U can make the electrons a dopant donates spread over the W sublattice instead of
sitting as W5+ small polarons. The ramp would then carry on from a delocalised state and the
final static would look like a result. :class:`PolaronCheckedVaspMaker` runs the step's VASP
job exactly as atomate2's ``BaseVaspMaker`` does, then reads the finished run folder with
:mod:`polaronflow.analysis` and counts the W sites with ``|m| >= threshold``:

* enough polarons (count >= electrons donated): the step's output goes on unchanged;
* too few: the report is stored in the task document (``additional_json["polaron_check"]``)
  and the job's children are stopped (jobflow ``stop_children``; FireWorks defuses them), so
  the ramp ends at that step with the reason in its output;
* too few and ``reseed_on_delocalisation``: the step is replaced once by a retry from the same
  input structure with the polaron seeds put back (seed moments and an optional bond stretch,
  :func:`polaronflow.structures.polarons.seed_polarons`); the retry's own check stops the
  ramp if the polarons still do not form. The retry has the step's job id (jobflow
  ``replace``), so later steps continue from it transparently.

The check is done inside the VASP job (not as a separate job) so that the ramp keeps one job
per VASP run, and so that the run folder is read where it was written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atomate2.vasp.jobs.base import BaseVaspMaker, vasp_job
from pydantic import BaseModel, Field

from polaronflow.workflows.vasp.spec import RECORD_KEY

if TYPE_CHECKING:
    from jobflow import Response
    from pymatgen.core import Structure

logger = logging.getLogger(__name__)

#: Key of the report in the task document's ``additional_json``.
CHECK_KEY = "polaron_check"


class PolaronCheck(BaseModel):
    """Outcome of the polaron check after one VASP step of a U ramp."""

    job_name: str = Field(description="Name of the checked VASP job.")
    run_dir: str = Field(description="Run folder that was read.")
    u: float | None = Field(None, description="U on W d of the step, eV (from the job record).")
    threshold: float = Field(description="|m| at or above which a W site is a polaron, μB.")
    electrons_expected: float | None = Field(
        description="Electrons expected to localise (donated by the dopants, or given)."
    )
    polaron_count: int = Field(description="W sites with |m| >= threshold.")
    polaron_sites: list[int] = Field(description="Their site indices (0-based).")
    polaron_moments: list[float] = Field(description="Their moments, μB.")
    largest_other_moment: float | None = Field(description="Largest |m| on the other W sites, μB.")
    total_moment: float | None = Field(description="Total moment of the cell, μB.")
    localised: bool = Field(
        description="True when the count reaches the electrons expected (or none are expected)."
    )
    flags: list[str] = Field(
        description="Flags of polaronflow.analysis.polarons: missing, delocalised, extra."
    )
    action: str = Field(
        description="'continue' (children run), 'stop' (children stopped), or 'reseed' "
        "(the step is retried once with the seeds put back)."
    )
    reason: str = Field(description="One line saying what was found and what was done.")
    attempt: int = Field(description="0 for the step, 1 for its re-seeded retry.")
    reseed_on_delocalisation: bool = Field(
        description="Whether the ramp was allowed to re-seed and retry once."
    )
    reseed_sites: list[int] = Field(
        default_factory=list, description="W sites re-seeded for the retry (0-based)."
    )
    synthetic: bool = Field(False, description="The run was written by the mock-VASP emulator.")


def check_run_polarons(
    run_dir: str | Path,
    *,
    job_name: str = "",
    threshold: float | None = None,
    electrons: float | None = None,
    u: float | None = None,
) -> PolaronCheck:
    """Count the polarons of a finished run and decide whether they are localised.

    Parameters
    ----------
    run_dir
        The run folder (vasprun.xml and OUTCAR, plain or gzipped).
    job_name
        Name recorded in the report.
    threshold
        |m| (μB) at or above which a W site counts; default
        :data:`polaronflow.analysis.polarons.DEFAULT_THRESHOLD`.
    electrons
        Electrons expected to localise; default from the dopants in the structure.
    u
        The step's U (eV), recorded in the report.

    Returns
    -------
    PolaronCheck
        With ``action`` "continue" when localised, else "stop" (the caller may re-seed).
    """
    from polaronflow.analysis.polarons import DEFAULT_THRESHOLD, analyze_polarons
    from polaronflow.analysis.readers import read_run

    threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    run = read_run(run_dir, eigen=False, dos=False)
    result = analyze_polarons(run, threshold=threshold, electrons=electrons)
    expected = result.electrons_donated
    localised = expected is None or result.polaron_count >= round(expected)
    sites = [p.index for p in result.polarons]
    if expected is None:
        reason = (
            f"{result.polaron_count} W site(s) with |m| >= {threshold:g} μB; no dopant electrons "
            "to compare with"
        )
    elif localised:
        reason = (
            f"{result.polaron_count} polaron(s) for {expected:g} electrons donated "
            f"(|m| >= {threshold:g} μB on W {sites})"
        )
    else:
        other = result.largest_other_moment
        reason = (
            f"polarons delocalised: {result.polaron_count} W site(s) with |m| >= {threshold:g} μB "
            f"for {expected:g} electrons donated"
            + (f" (largest other W moment {other:.3f} μB)" if other is not None else "")
            + (f" at U = {u:g} eV" if u is not None else "")
        )
    return PolaronCheck(
        job_name=job_name,
        run_dir=str(run_dir),
        u=u,
        threshold=threshold,
        electrons_expected=expected,
        polaron_count=result.polaron_count,
        polaron_sites=sites,
        polaron_moments=[p.moment for p in result.polarons],
        largest_other_moment=result.largest_other_moment,
        total_moment=result.total_moment,
        localised=localised,
        flags=list(result.flags),
        action="continue" if localised else "stop",
        reason=reason,
        attempt=0,
        reseed_on_delocalisation=False,
        synthetic=result.synthetic,
    )


def seed_sites_of(structure: Structure, threshold: float, count: int | None = None) -> list[int]:
    """W sites that carry a polaron seed (``polaron_seed``) or |magmom| >= ``threshold``.

    Parameters
    ----------
    structure
        A seeded start structure or a previous step's output (moments as ``magmom``).
    threshold
        |magmom| (μB) that marks a site when there is no ``polaron_seed`` property.
    count
        Keep at most this many (largest |magmom| first).

    Returns
    -------
    list of int
        Site indices.
    """
    props = structure.site_properties
    magmom = [float(abs(m)) if m is not None else 0.0 for m in props.get("magmom", [])]
    if not magmom:
        magmom = [0.0] * len(structure)
    flagged = props.get("polaron_seed")
    sites = [
        i
        for i, site in enumerate(structure)
        if site.specie.symbol == "W"
        and ((flagged is not None and flagged[i]) or (flagged is None and magmom[i] >= threshold))
    ]
    sites.sort(key=lambda i: -magmom[i])
    return sites if count is None else sites[:count]


@dataclass
class PolaronCheckedVaspMaker(BaseVaspMaker):
    """An atomate2 VASP job followed by the polaron check (see the module docstring).

    Parameters
    ----------
    polaron_threshold
        |m| (μB) at or above which a W site is a polaron.
    expected_polarons
        Electrons expected to localise; None derives them from the dopants.
    reseed_on_delocalisation
        Retry a delocalised step once from its input structure with the seeds put back.
    reseed_sites
        W sites to re-seed (the ramp's original seeds); None takes the input structure's
        seeds (``polaron_seed`` or |magmom| >= threshold).
    reseed_moment
        Seed moment (μB) put back on each re-seeded W.
    reseed_stretch
        Fractional W–O bond stretch of the re-seeded W (0 = none, 0.03 = +3 %).
    attempt
        0 for the step itself, 1 for its re-seeded retry (which never retries again).
    """

    polaron_threshold: float = 0.3
    expected_polarons: float | None = None
    reseed_on_delocalisation: bool = False
    reseed_sites: list[int] | None = None
    reseed_moment: float = 1.0
    reseed_stretch: float = 0.0
    attempt: int = 0

    @vasp_job
    def make(self, structure: Structure, prev_dir: str | Path | None = None) -> Response:
        """Run the VASP step, then check its polarons (see the module docstring).

        Parameters
        ----------
        structure
            The step's start structure.
        prev_dir
            The previous run folder (WAVECAR and outputs are copied from it).

        Returns
        -------
        jobflow.Response
            The task document (with ``additional_json["polaron_check"]``), and
            ``stop_children`` or a ``replace`` by the re-seeded retry when delocalised.
        """
        response = BaseVaspMaker.make.original(self, structure, prev_dir=prev_dir)
        task_doc = response.output
        record = (self.write_additional_data or {}).get(RECORD_KEY) or {}
        try:
            check = check_run_polarons(
                Path.cwd(),
                job_name=self.name,
                threshold=self.polaron_threshold,
                electrons=self.expected_polarons,
                u=record.get("u"),
            )
        except Exception as exc:  # any failure to check must stop the ramp
            # Without moments nothing says the polarons are there: stop rather than accept.
            response.stop_children = True
            task_doc.additional_json[CHECK_KEY] = {
                "job_name": self.name,
                "localised": False,
                "action": "stop",
                "reason": f"polaron check impossible: {type(exc).__name__}: {exc}",
                "attempt": self.attempt,
                "reseed_on_delocalisation": self.reseed_on_delocalisation,
            }
            logger.warning("%s: polaron check impossible (%s); children stopped", self.name, exc)
            return response
        check.attempt = self.attempt
        check.reseed_on_delocalisation = self.reseed_on_delocalisation
        if not check.localised:
            n = None if check.electrons_expected is None else round(check.electrons_expected)
            sites = (
                list(self.reseed_sites)
                if self.reseed_sites
                else seed_sites_of(structure, self.polaron_threshold, n)
            )
            if self.reseed_on_delocalisation and self.attempt == 0 and sites:
                check.action = "reseed"
                check.reseed_sites = sites
                check.reason += f"; retrying once with seeds on W {sites}"
                response.replace = self._retry(structure, sites, prev_dir)
            else:
                check.action = "stop"
                if self.attempt:
                    check.reason += "; the re-seeded retry did not localise either"
                elif self.reseed_on_delocalisation:
                    check.reason += "; no seed sites to re-seed"
                check.reason += ": ramp stopped"
                response.stop_children = True
            logger.warning("%s: %s", self.name, check.reason)
        task_doc.additional_json[CHECK_KEY] = check.model_dump(mode="json")
        return response

    def _retry(self, structure: Structure, sites: list[int], prev_dir: Any) -> Any:
        from polaronflow.structures.polarons import seed_polarons

        reseeded = seed_polarons(
            structure, sites, moment=self.reseed_moment, stretch=self.reseed_stretch
        )
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        name = f"{self.name}-reseed"
        extra = dict(self.write_additional_data or {})
        record = dict(extra.get(RECORD_KEY) or {})
        if record:
            # The retry's run folder says what it is: a re-seeded repeat of the step.
            record.update(job_name=name, retry_of=self.name, reseed_sites=list(sites))
            extra[RECORD_KEY] = record
        values.update(name=name, attempt=1, write_additional_data=extra)
        return type(self)(**values).make(reseeded, prev_dir=prev_dir)


def with_polaron_check(maker: BaseVaspMaker, **settings: Any) -> PolaronCheckedVaspMaker:
    """Return ``maker`` as a :class:`PolaronCheckedVaspMaker` with the same fields.

    Parameters
    ----------
    maker
        Any atomate2 ``BaseVaspMaker`` (e.g. from ``VaspJobSpec.maker``).
    **settings
        Fields of the check (``polaron_threshold``, ``reseed_on_delocalisation``, ...).

    Returns
    -------
    PolaronCheckedVaspMaker
    """
    values = {f.name: getattr(maker, f.name) for f in fields(BaseVaspMaker)}
    values.update(settings)
    return PolaronCheckedVaspMaker(**values)
