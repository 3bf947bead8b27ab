def yen(amount) -> str:
    """Yen have no minor unit: ¥1,280, never ¥1,280.00."""
    return f"¥{round(amount):,}"
