"""Polaron checks after each U-ramp step: a delocalised polaron is never accepted silently.

Lowering U can make the electrons a dopant donates spread over the W sublattice instead of
sitting as W5+ small polarons. The ramp would then carry on from a delocalised state and the
final static would look like a result. :class:`PolaronCheckedVaspMaker` runs the step's VASP
job exactly as atomate2's ``BaseVaspMaker`` does, then reads the finished run folder with
:mod:`polaronflow.analysis` and counts the W sites with ``|m| >= threshold``:

* enough polarons (count >= electrons donated): the step's output goes on unchanged;
* too few: the report is stored in the task document (``additional_json["polaron_check"]``)
  and in ``polaron_check.json`` in the run folder, with action ``stop``. The later steps of
  the ramp and its static then *skip*: they see the stop in their ``prev_dir``, run no VASP,
  and return a small output (``skipped``, the reason, the structure handed on) so that the
  campaign's final analysis job still runs and reports what is missing and why;
* too few and ``reseed_on_delocalisation``: the step is replaced once (jobflow ``replace``,
  the same job id, so later steps continue from it) by a retry that **starts fresh**: no
  WAVECAR is copied and the INCAR says ``ISTART = 0`` and ``ICHARG = 2``, because VASP ignores
  MAGMOM whenever it reads a WAVECAR — a retry from the failed step's WAVECAR would only
  repeat the delocalised run. The retry puts the seed moments back on the W sites that held
  the polarons in the step's input, with a bond-distortion seed (``reseed_stretch``, +3 % by
  default); with ``reseed_at_previous_u`` it first re-localises at the previous, higher U of
  the schedule and then repeats the step from that run's WAVECAR. The retry's own check
  stops the ramp if the polarons still do not form.

Through an undisturbed ramp the WAVECAR carries the polarons from step to step; the OUTCAR
moments handed on as MAGMOM (atomate2's ``magmom`` site property) are only a fallback for a
step that starts without a WAVECAR.

The check runs inside the VASP job (not as a separate job) so that the ramp keeps one job
per VASP run, and so that the run folder is read where it was written.

The same module checks a reference's spin state: :func:`check_total_moment` /
:func:`check_triplet` read a finished run's total moment, and :class:`MomentCheckedVaspMaker`
runs that check after every O2 job (``NUPDOWN = 2``, the triplet) and fails the job when the
moment is not 2 μB.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atomate2.vasp.jobs.base import BaseVaspMaker, vasp_job
from pydantic import BaseModel, Field

from polaronflow.workflows.vasp.postrun import run_vasp_job
from polaronflow.workflows.vasp.spec import DEFAULT_RESEED_STRETCH, RECORD_KEY, local_path

if TYPE_CHECKING:
    from jobflow import Response
    from pymatgen.core import Structure

logger = logging.getLogger(__name__)

#: Key of the report in the task document's ``additional_json``.
CHECK_KEY = "polaron_check"
#: The same report as a file in the run folder (read by the next step and by ``status``).
CHECK_FILE = "polaron_check.json"
#: Actions after which the rest of a ramp does not run VASP.
STOPPING_ACTIONS = ("stop", "skipped")


def _ions(sites: list[int]) -> str:
    """Sites as VASP ion numbers (1-based, as in the OUTCAR and in ``polaronflow analyze``)."""
    return "ion " + ", ".join(str(i + 1) for i in sorted(sites)) if sites else "none"


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
        description="'continue' (the ramp goes on), 'stop' (the later steps skip), 'reseed' "
        "(the step is retried once, fresh, with the seeds put back) or 'skipped' (an earlier "
        "step stopped the ramp; this job ran no VASP)."
    )
    reason: str = Field(description="One line saying what was found and what was done.")
    attempt: int = Field(description="0 for the step, 1 for its re-seeded retry.")
    reseed_on_delocalisation: bool = Field(
        description="Whether the ramp was allowed to re-seed and retry once."
    )
    reseed_sites: list[int] = Field(
        default_factory=list, description="W sites re-seeded for the retry (0-based)."
    )
    previous_sites: list[int] = Field(
        default_factory=list,
        description="W sites (0-based) that carried the polarons in the step's input: the "
        "seeds, or the previous step's polaron sites.",
    )
    moved: bool = Field(
        False,
        description="True when the polarons localised on other W sites than in the input (a "
        "polaron that hopped during the step); flagged, not stopped.",
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
            f"(|m| >= {threshold:g} μB on W {_ions(sites)})"
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


def read_check_file(run_dir: str | Path | None) -> dict[str, Any] | None:
    """The ``polaron_check.json`` of a run folder (``host:/path`` accepted), or None."""
    folder = local_path(run_dir)
    if folder is None:
        return None
    path = folder / CHECK_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_check_file(report: dict[str, Any]) -> None:
    Path(CHECK_FILE).write_text(json.dumps(report, indent=2) + "\n")


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
        Retry a delocalised step once, fresh, from its input structure with the seeds put back.
    reseed_sites
        W sites to re-seed; None takes the input structure's seeds (``polaron_seed`` or the
        W sites with the largest |magmom| — where the polarons were before this step).
    reseed_moment
        Seed moment (μB) put back on each re-seeded W.
    reseed_stretch
        Fractional W–O bond stretch of the re-seeded W for the retry (0.03 = +3 %; 0 = none).
    reseed_at_previous_u
        Re-localise at the previous (higher) U of the schedule first, then repeat the step
        from that run's WAVECAR.
    attempt
        0 for the step itself, 1 for its re-seeded retry (which never retries again).
    """

    polaron_threshold: float = 0.3
    expected_polarons: float | None = None
    reseed_on_delocalisation: bool = False
    reseed_sites: list[int] | None = None
    reseed_moment: float = 1.0
    reseed_stretch: float = DEFAULT_RESEED_STRETCH
    reseed_at_previous_u: bool = False
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
            The task document (with ``additional_json["polaron_check"]``), a ``replace`` by
            the re-seeded retry when delocalised, or (an earlier step stopped the ramp) a task
            document without a calculation whose ``additional_json["skipped"]`` is True.
        """
        upstream = read_check_file(prev_dir)
        if upstream is not None and upstream.get("action") in STOPPING_ACTIONS:
            return self._skip(structure, upstream)
        response = run_vasp_job(self, structure, prev_dir=prev_dir)
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
            report = {
                "job_name": self.name,
                "localised": False,
                "action": "stop",
                "reason": f"polaron check impossible: {type(exc).__name__}: {exc}",
                "attempt": self.attempt,
                "reseed_on_delocalisation": self.reseed_on_delocalisation,
            }
            task_doc.additional_json[CHECK_KEY] = report
            _write_check_file(report)
            logger.warning("%s: polaron check impossible (%s); ramp stopped", self.name, exc)
            return response
        check.attempt = self.attempt
        check.reseed_on_delocalisation = self.reseed_on_delocalisation
        n_expected = None if check.electrons_expected is None else round(check.electrons_expected)
        check.previous_sites = seed_sites_of(structure, self.polaron_threshold, n_expected)
        if (
            check.localised
            and check.previous_sites
            and set(check.polaron_sites) != set(check.previous_sites)
        ):
            check.moved = True
            check.flags = [*check.flags, "moved"]
            check.reason += (
                f"; polaron moved: W {_ions(check.previous_sites)} before the step, "
                f"W {_ions(check.polaron_sites)} after"
            )
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
                check.reason += (
                    f"; retrying once, fresh (no WAVECAR), with seeds on W {_ions(sites)}"
                )
                response.replace = self._retry(structure, sites, record)
            else:
                check.action = "stop"
                if self.attempt:
                    check.reason += "; the re-seeded retry did not localise either"
                elif self.reseed_on_delocalisation:
                    check.reason += "; no seed sites to re-seed"
                check.reason += ": ramp stopped"
            logger.warning("%s: %s", self.name, check.reason)
        report = check.model_dump(mode="json")
        task_doc.additional_json[CHECK_KEY] = report
        _write_check_file(report)
        return response

    def _skip(self, structure: Structure, upstream: dict[str, Any]) -> Response:
        """No VASP: an earlier step stopped the ramp. Hand the reason (and the folder) on."""
        from atomate2.utils.path import get_uri
        from emmet.core.tasks import TaskDoc
        from jobflow import Response

        origin = upstream.get("stopped_at") or upstream.get("job_name")
        reason = upstream.get("stop_reason") or upstream.get("reason", "")
        report = {
            "job_name": self.name,
            "localised": False,
            "action": "skipped",
            "stopped_at": origin,
            "stop_reason": reason,
            "reason": f"not run: the ramp stopped at {origin} ({reason})",
            "attempt": self.attempt,
            "reseed_on_delocalisation": self.reseed_on_delocalisation,
        }
        _write_check_file(report)
        logger.warning("%s: %s", self.name, report["reason"])
        # A task document without a calculation: later steps read its structure and
        # dir_name as they would a run's; additional_json["skipped"] says it is not one.
        output = TaskDoc(
            structure=structure,
            dir_name=get_uri(Path.cwd()),
            task_label=self.name,
            calcs_reversed=[],
            additional_json={"skipped": True, CHECK_KEY: report},
        )
        return Response(output=output)

    def _retry(self, structure: Structure, sites: list[int], record: dict[str, Any]) -> Any:
        """The fresh, re-seeded retry of this step (one job, or two at the previous U)."""
        from jobflow import CURRENT_JOB, Flow

        from polaronflow.naming import reseed_name
        from polaronflow.structures.polarons import seed_polarons

        reseeded = seed_polarons(
            structure, sites, moment=self.reseed_moment, stretch=self.reseed_stretch
        )
        schedule = list(record.get("u_schedule") or [])
        step = record.get("step")
        previous_u = None
        if self.reseed_at_previous_u and isinstance(step, int) and 2 <= step <= len(schedule):
            previous_u = float(schedule[step - 2])
        fresh_u = previous_u if previous_u is not None else record.get("u")
        fresh = self._retry_maker(
            reseed_name(self.name, previous_u),
            sites,
            u=fresh_u,
            fresh_start=True,
        ).make(reseeded, prev_dir=None)
        if previous_u is None:
            return fresh
        again = self._retry_maker(reseed_name(self.name), sites, u=None, fresh_start=False)
        repeat = again.make(fresh.output.structure, prev_dir=fresh.output.dir_name)
        # The repeat takes this job's id (as jobflow does for a single replacing job), so the
        # next step continues from it. jobflow's own Flow replacement would add a job that
        # re-validates the output against TaskDoc before it is resolved, which fails.
        current = CURRENT_JOB.job
        repeat.set_uuid(current.uuid)
        repeat.index = current.index + 1
        repeat.metadata = {**(repeat.metadata or {}), **(current.metadata or {})}
        return Flow([fresh, repeat], name=reseed_name(self.name))

    def _retry_maker(
        self, name: str, sites: list[int], u: float | None, fresh_start: bool
    ) -> PolaronCheckedVaspMaker:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        extra = dict(self.write_additional_data or {})
        record = dict(extra.get(RECORD_KEY) or {})
        generator = self.input_set_generator
        updates: dict[str, Any] = {}
        if fresh_start:
            # VASP ignores MAGMOM when it reads a WAVECAR: the retry must not read one.
            updates["fresh_start"] = True
        if u is not None and record.get("hubbard_element"):
            updates["hubbard_u"] = {record["hubbard_element"]: float(u)}
        if updates:
            generator = dataclasses.replace(generator, **updates)
        if record:
            # The retry's run folder says what it is: a re-seeded repeat of the step.
            record.update(
                job_name=name,
                retry_of=self.name,
                reseed_sites=list(sites),
                reseed_stretch=self.reseed_stretch,
                fresh_start=fresh_start,
                wavecar_from=None if fresh_start else record.get("wavecar_from"),
            )
            if u is not None:
                record["u"] = float(u)
            extra[RECORD_KEY] = record
        copy = {} if fresh_start else {"additional_vasp_files": ("WAVECAR",)}
        # BaseVaspMaker.make records from_prev in this dict in place; the retry decides anew.
        write_kwargs = {
            k: v for k, v in (self.write_input_set_kwargs or {}).items() if k != "from_prev"
        }
        values.update(
            write_input_set_kwargs=write_kwargs,
            name=name,
            attempt=1,
            write_additional_data=extra,
            input_set_generator=generator,
            copy_vasp_kwargs=copy,
        )
        return type(self)(**values)


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


# ---------------------------------------------------------------- total moment (O2 triplet)
#: Key of the total-moment report in the task document's ``additional_json``.
MOMENT_CHECK_KEY = "moment_check"
#: The same report as a file in the run folder.
MOMENT_CHECK_FILE = "moment_check.json"
#: The total moment of triplet O2 (μB).
TRIPLET_MOMENT = 2.0
#: Default |M - expected| (μB) accepted by :func:`check_total_moment`.
DEFAULT_MOMENT_TOLERANCE = 0.1


class MomentCheck(BaseModel):
    """Whether a finished run has the total moment its spin state requires."""

    job_name: str = Field(description="Name of the checked VASP job.")
    run_dir: str = Field(description="Run folder that was read.")
    expected: float = Field(description="Required total moment of the cell, μB.")
    total_moment: float | None = Field(description="Total moment found (OUTCAR/OSZICAR), μB.")
    tolerance: float = Field(description="Accepted |total - expected|, μB.")
    ok: bool = Field(description="True when the total moment is within the tolerance.")
    reason: str = Field(description="One line saying what was found.")
    synthetic: bool = Field(False, description="The run was written by the mock-VASP emulator.")


def check_total_moment(
    run_dir: str | Path,
    expected: float,
    *,
    tolerance: float = DEFAULT_MOMENT_TOLERANCE,
    job_name: str = "",
) -> MomentCheck:
    """Compare a finished run's total moment with the moment its spin state requires.

    Parameters
    ----------
    run_dir
        The run folder (OUTCAR / OSZICAR / vasprun.xml, plain or gzipped).
    expected
        The required total moment (μB), e.g. :data:`TRIPLET_MOMENT` for O2.
    tolerance
        Accepted deviation (μB).
    job_name
        Name recorded in the report.

    Returns
    -------
    MomentCheck
        ``ok`` False (with the reason) when the moment is missing or off.
    """
    from polaronflow.analysis.readers import read_run

    run = read_run(run_dir, eigen=False, dos=False)
    total = None if run.total_moment is None else float(run.total_moment)
    ok = total is not None and abs(total - expected) <= tolerance
    if total is None:
        reason = f"no total moment in {run_dir}; cannot confirm {expected:g} μB"
    elif ok:
        reason = f"total moment {total:.3f} μB = {expected:g} μB within {tolerance:g} μB"
    else:
        reason = (
            f"total moment {total:.3f} μB, expected {expected:g} μB (±{tolerance:g}): "
            "not the required spin state"
        )
    return MomentCheck(
        job_name=job_name,
        run_dir=str(run_dir),
        expected=float(expected),
        total_moment=total,
        tolerance=float(tolerance),
        ok=ok,
        reason=reason,
        synthetic=bool(getattr(run, "synthetic", False)),
    )


def check_triplet(run_dir: str | Path, **kwargs: Any) -> MomentCheck:
    """:func:`check_total_moment` for triplet O2 (2 μB); read this before using its energy."""
    return check_total_moment(run_dir, TRIPLET_MOMENT, **kwargs)


@dataclass
class MomentCheckedVaspMaker(BaseVaspMaker):
    """An atomate2 VASP job whose total moment is checked after the run (O2: the triplet).

    The report goes into ``additional_json["moment_check"]`` and ``moment_check.json`` in the
    run folder; a run whose total moment is not ``expected_moment`` fails the job with a
    :class:`~polaronflow.errors.WorkflowError` (a singlet O2 would shift every reaction energy
    by about 1 eV; no energy of the wrong spin state is handed on).

    Parameters
    ----------
    expected_moment
        Required total moment (μB).
    moment_tolerance
        Accepted deviation (μB).
    """

    expected_moment: float = TRIPLET_MOMENT
    moment_tolerance: float = DEFAULT_MOMENT_TOLERANCE

    @vasp_job
    def make(self, structure: Structure, prev_dir: str | Path | None = None) -> Response:
        """Run the VASP job, then check its total moment (see the class docstring)."""
        from polaronflow.errors import WorkflowError

        response = BaseVaspMaker.make.original(self, structure, prev_dir=prev_dir)
        check = check_total_moment(
            Path.cwd(),
            self.expected_moment,
            tolerance=self.moment_tolerance,
            job_name=self.name,
        )
        report = check.model_dump(mode="json")
        Path(MOMENT_CHECK_FILE).write_text(json.dumps(report, indent=2) + "\n")
        response.output.additional_json[MOMENT_CHECK_KEY] = report
        if not check.ok:
            raise WorkflowError(f"{self.name}: {check.reason}")
        return response


def with_moment_check(maker: BaseVaspMaker, expected_moment: float, **settings: Any) -> Any:
    """Return ``maker`` as a :class:`MomentCheckedVaspMaker` with the same fields."""
    values = {f.name: getattr(maker, f.name) for f in fields(BaseVaspMaker)}
    values.update(settings, expected_moment=float(expected_moment))
    return MomentCheckedVaspMaker(**values)
