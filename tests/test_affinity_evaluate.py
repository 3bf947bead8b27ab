"""``crosssell_evaluate``: the offline comparison of ranking metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.factories import ProductFactory, make_order

GROCERIES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "groceries.csv"


def table(out: str) -> dict[str, tuple[float, float]]:
    rows = {}
    for line in out.splitlines():
        parts = line.rsplit(maxsplit=2)
        if len(parts) == 3:
            try:
                rows[parts[0].strip()] = (float(parts[1]), float(parts[2]))
            except ValueError:
                continue
    return rows


def test_basket_file_with_planted_pairs(tmp_path, capsys):
    lines = []
    for i in range(300):
        pair = 2 * (i % 5)
        noise = [f"noise{(i * 7 + j) % 40}" for j in range(3)]
        lines.append(",".join([f"item{pair}", f"item{pair + 1}", *noise]))
    path = tmp_path / "baskets.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    call_command("crosssell_evaluate", "--csv", str(path), "--seeds", "2")
    out = capsys.readouterr().out
    rows = table(out)
    assert "300 baskets" in out
    assert rows["cosine"][0] > rows["popularity"][0]
    assert rows["cosine"][1] >= rows["popularity"][1]
    assert any("(settings)" in name for name in rows)


@pytest.mark.django_db
def test_shop_orders_are_read_through_the_configured_source(capsys):
    products = ProductFactory.create_batch(6)
    for i in range(40):
        a = products[(i % 3) * 2]
        b = products[(i % 3) * 2 + 1]
        make_order(a, b)
    call_command("crosssell_evaluate", "--seeds", "1", "--k", "1")
    rows = table(capsys.readouterr().out)
    assert rows["cosine"][0] == 1.0  # each product has exactly one partner
    assert rows["popularity"][0] < 1.0


@pytest.mark.django_db
def test_too_few_orders_is_a_clear_error():
    with pytest.raises(CommandError, match="No orders to evaluate"):
        call_command("crosssell_evaluate")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="not found"):
        call_command("crosssell_evaluate", "--csv", str(tmp_path / "nope.csv"))


@pytest.mark.slow
def test_groceries_reproduces_the_published_reference(capsys):
    if not GROCERIES.is_file():
        pytest.skip(f"{GROCERIES} is absent")
    call_command("crosssell_evaluate", "--csv", str(GROCERIES), "--seeds", "2")
    rows = table(capsys.readouterr().out)
    # Reference (5 seeds): popularity 0.376, confidence 0.393, cosine 0.393, raw lift 0.023.
    assert rows["popularity"][0] == pytest.approx(0.376, abs=0.01)
    assert rows["confidence"][0] == pytest.approx(0.393, abs=0.01)
    assert rows["cosine"][0] == pytest.approx(0.393, abs=0.01)
    assert rows["lift (raw)"][0] == pytest.approx(0.023, abs=0.01)
    assert rows["cosine"][1] > rows["confidence"][1] > rows["popularity"][1]


def planted_lines(path, n_orders=400):
    """Order lines with times: products come in fixed pairs plus popular noise."""
    rows = ["order,product,placed_at"]
    for i in range(n_orders):
        pair = 2 * (i % 5)
        day = 1 + i * 60 // n_orders
        placed = f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}T10:00:00"
        for item in (f"item{pair}", f"item{pair + 1}", f"noise{(i * 7) % 20}"):
            rows.append(f"{i},{item},{placed}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_order_line_file_runs_a_time_split(tmp_path, capsys):
    path = planted_lines(tmp_path / "lines.csv")
    call_command("crosssell_evaluate", "--lines", str(path))
    out = capsys.readouterr().out
    rows = table(out)
    assert "400 baskets" in out and "time split" in out
    assert rows["cosine"][0] > rows["popularity"][0] + 0.2


def test_table_over_several_files(tmp_path, capsys):
    lines = planted_lines(tmp_path / "lines.csv")
    baskets = tmp_path / "baskets.csv"
    baskets.write_text(
        "\n".join(f"a{i % 4},b{i % 4},c{i % 9}" for i in range(200)) + "\n", encoding="utf-8"
    )
    call_command("crosssell_evaluate", "--table", str(baskets), str(lines), "--seeds", "1")
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert "baskets.csv" in header and "lines.csv" in header
    assert "| cosine, 1/size |" in out
    # The half-life row needs times: not applicable to the basket file.
    half_life = next(line for line in out.splitlines() if "half-life" in line)
    assert half_life.split("|")[2].strip() == "n/a"
    assert "time split" in out and "1 seeds" in out


def test_implicit_without_the_package_is_a_clear_error(monkeypatch):
    from django_crosssell import evaluation

    monkeypatch.setattr(evaluation, "implicit_models", lambda *args: ())
    with pytest.raises(CommandError, match="implicit"):
        call_command("crosssell_evaluate", "--implicit", "--csv", "x.csv")
