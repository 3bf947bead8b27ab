"""Reading order data from files for offline evaluation (``crosssell_evaluate``, benchmarks).

Two shapes, the ones the project's shared reference data comes in:

* a basket file: one basket per line, its items comma-separated (Groceries), no times;
* an order-line CSV (optionally gzipped) with a header: one line per product of an order,
  with the time it was placed. Three headers are understood:

  - ``order,product[,placed_at][,customer]`` (the generic form),
  - ``Member_number,Date,itemDescription`` (Kaggle's groceries; a basket is one member on
    one day, dates are day-first),
  - ``InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country``
    (UCI Online Retail; cancellations ``C...``, non-positive quantities or prices and
    stock codes that are not products, such as ``POST`` or ``BANK CHARGES``, are dropped).

pandas only, no Django: the evaluation must run on a laptop with nothing but the file.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

GENERIC = ("order", "product")
MEMBERS = ("Member_number", "Date", "itemDescription")
ONLINE_RETAIL = ("InvoiceNo", "StockCode", "InvoiceDate")


@dataclass
class Baskets:
    """Baskets (lists of distinct items) and, for order-line files, when each was placed."""

    baskets: list[list[Any]]
    times: np.ndarray | None  # datetime64[ns], one per basket
    names: dict[Any, str] | None = None  # item -> description, when the file has one

    def __len__(self) -> int:
        return len(self.baskets)


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def _header(path: Path) -> list[str]:
    with _open_text(path) as handle:
        return next(csv.reader(handle), [])


def is_order_line_file(path: Path) -> bool:
    """Whether ``path`` has one of the order-line headers (otherwise: a basket file)."""
    header = _header(path)
    return any(all(name in header for name in known) for known in (GENERIC, MEMBERS, ONLINE_RETAIL))


def read_basket_file(path: Path) -> Baskets:
    with _open_text(path) as handle:
        baskets = [
            list(dict.fromkeys(item.strip() for item in row if item.strip()))
            for row in csv.reader(handle)
        ]
    return Baskets([basket for basket in baskets if basket], None)


def read_order_lines(path: Path) -> pd.DataFrame:
    """The file's counting lines as columns ``order``, ``product``, ``placed_at`` (and
    ``customer``, ``name`` when present)."""
    header = _header(path)
    if all(name in header for name in ONLINE_RETAIL):
        return _online_retail(path)
    if all(name in header for name in MEMBERS):
        frame = pd.read_csv(path, dtype=str)
        placed = pd.to_datetime(frame["Date"], dayfirst=True, format="%d-%m-%Y")
        return pd.DataFrame(
            {
                "order": frame["Member_number"] + "/" + frame["Date"],
                "product": frame["itemDescription"].str.strip(),
                "placed_at": placed,
                "customer": frame["Member_number"],
            }
        )
    if all(name in header for name in GENERIC):
        frame = pd.read_csv(path)
        if "placed_at" in frame:
            frame["placed_at"] = pd.to_datetime(frame["placed_at"])
        return frame.dropna(subset=["order", "product"])
    raise ValueError(
        f"{path}: unknown order-line header {header!r}; expected order,product[,placed_at]."
    )


def _online_retail(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(
        path,
        dtype={"InvoiceNo": str, "StockCode": str, "Description": str, "CustomerID": str},
    )
    invoice = frame["InvoiceNo"].astype(str)
    code = frame["StockCode"].astype(str).str.strip().str.upper()
    keep = (
        ~invoice.str.startswith("C")
        & (frame["Quantity"] > 0)
        & (frame["UnitPrice"] > 0)
        # Products have five-digit codes (with an optional variant letter); postage, fees,
        # manual entries and samples (POST, DOT, M, BANK CHARGES, AMAZONFEE, ...) do not.
        & code.str.match(r"^\d{5}")
    )
    frame = frame[keep]
    return pd.DataFrame(
        {
            "order": invoice[keep].to_numpy(),
            "product": code[keep].to_numpy(),
            "placed_at": pd.to_datetime(frame["InvoiceDate"]).to_numpy(),
            "customer": frame["CustomerID"].to_numpy(),
            "name": frame["Description"].fillna("").to_numpy(),
        }
    )


def baskets_from_lines(frame: pd.DataFrame) -> Baskets:
    """One basket per order (distinct products, in line order), with the order's time."""
    codes, uniques = pd.factorize(frame["order"], sort=False)
    order = np.argsort(codes, kind="stable")
    products = frame["product"].to_numpy()[order]
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    baskets = [list(dict.fromkeys(part.tolist())) for part in np.split(products, bounds)]
    times = None
    if "placed_at" in frame:
        stamps = pd.to_datetime(frame["placed_at"]).to_numpy("datetime64[ns]").astype(np.int64)
        first = np.full(len(uniques), np.iinfo(np.int64).max)
        np.minimum.at(first, codes, stamps)
        times = first.astype("datetime64[ns]")
    names = None
    if "name" in frame:
        names = dict(zip(frame["product"], frame["name"], strict=True))
    return Baskets(baskets, times, names)


def load(path: Path) -> Baskets:
    """A basket file or an order-line file, whichever ``path`` is."""
    if is_order_line_file(path):
        return baskets_from_lines(read_order_lines(path))
    return read_basket_file(path)
