"""``manage.py crosssell_report EXPERIMENT_KEY [--json]``: an experiment's results.

Units and conversions per variant, each variant against the control on conversion, revenue
per unit, average order value and attach rate with 95% (1 - alpha) intervals on the
relative uplift, the sample-ratio check and the verdict. With a sample-ratio mismatch the
verdict is withheld: the split itself is broken, so no difference can be trusted.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_crosssell.measure.models import Experiment
from django_crosssell.measure.report import experiment_report

VERDICTS = {
    "srm": "NO VERDICT: sample ratio mismatch (p < 0.001); check the assignment first",
    "collecting": "no verdict yet: below the minimum sample or duration",
    "better": "better than the control",
    "worse": "worse than the control",
    "no_difference": "no significant difference",
}


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value * 100:+.1f}%"


class Command(BaseCommand):
    help = "Print an experiment's results (conversion, revenue, AOV, attach rate, SRM)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("experiment", help="the experiment's key")
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            experiment = Experiment.objects.get(key=options["experiment"])
        except Experiment.DoesNotExist as exc:
            raise CommandError(f"No experiment with the key {options['experiment']!r}.") from exc
        report = experiment_report(experiment, seed=options["seed"])
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False, default=str))
            return
        self.stdout.write(
            f"{report['experiment']} ({report['unit']}s, {report['days']} days, "
            f"primary metric {report['primary_metric']}, alpha {report['alpha']})"
        )
        for row in report["variants"]:
            rate = row["conversion_rate"]
            self.stdout.write(
                f"  {row['variant']:<16} units {row['units']:>7}  conversions "
                f"{row['conversions']:>6}  rate {'—' if rate is None else f'{rate:.4f}'}  "
                f"revenue {row['revenue']:.0f}"
            )
        srm = report["sample_ratio"]
        self.stdout.write(
            f"sample ratio: p = {srm['p_value']:.4g}" + ("  MISMATCH" if srm["mismatch"] else "")
        )
        for comparison in report["comparisons"]:
            self.stdout.write(f"{comparison['variant']} vs {comparison['against']}:")
            for name, metric in comparison["metrics"].items():
                p_value = metric["p_value"]
                shown = "—" if p_value is None else f"{p_value:.4f}"
                self.stdout.write(
                    f"  {name:<10} uplift {_pct(metric['uplift'])}  95% CI "
                    f"[{_pct(metric['ci_low'])}, {_pct(metric['ci_high'])}]  p = {shown}"
                )
            self.stdout.write(f"  verdict: {VERDICTS[comparison['verdict']]}")
