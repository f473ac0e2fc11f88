"""Regenerate the small sample data under data/home (deterministic; a few KB each)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HOME = Path(__file__).parent / "home"


def main() -> None:
    customers = pa.table(
        {
            "customer_id": pa.array(range(1, 201), pa.int64()),
            "name": [f"Customer {i:03d}" for i in range(1, 201)],
            "country": [["DK", "SE", "NO", "FI", "DE"][i % 5] for i in range(200)],
            "signed_up": [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(200)],
            "is_active": [i % 7 != 0 for i in range(200)],
        }
    )
    orders = pa.table(
        {
            "order_id": pa.array(range(1, 2001), pa.int64()),
            "customer_id": pa.array([1 + (i * 37) % 200 for i in range(2000)], pa.int64()),
            "amount": pa.array([Decimal(f"{(i * 7919) % 100000 / 100:.2f}") for i in range(2000)], pa.decimal128(12, 2)),
            "ordered_at": pa.array(
                [dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=17 * i) for i in range(2000)],
                pa.timestamp("us", tz="UTC"),
            ),
            "note": [None if i % 11 == 0 else f"order {i}" for i in range(2000)],
        }
    )
    products = pa.table(
        {
            "sku": [f"SKU-{i:04d}" for i in range(50)],
            "price": [round(1.5 + i * 0.75, 2) for i in range(50)],
            "tags": [[f"t{i % 3}", f"t{i % 5}"] for i in range(50)],
        }
    )
    write(customers, HOME / "customers" / "customers.parquet")
    write(orders.slice(0, 1000), HOME / "orders" / "2025-01.parquet")
    write(orders.slice(1000), HOME / "orders" / "2025-02.parquet")
    write(products, HOME / "products" / "products.parquet")


def write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")


if __name__ == "__main__":
    main()
