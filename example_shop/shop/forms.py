"""Forms of the storefront: quantities are validated here, never trusted from the POST."""

from __future__ import annotations

from django import forms

from .cart import MAX_QUANTITY


class AddToCartForm(forms.Form):
    quantity = forms.IntegerField(
        label="数量",
        min_value=1,
        max_value=MAX_QUANTITY,
        initial=1,
        error_messages={
            "required": "数量を入力してください。",
            "invalid": "数量は整数で入力してください。",
            "min_value": "数量は1以上で入力してください。",
            "max_value": f"数量は{MAX_QUANTITY}以下で入力してください。",
        },
        widget=forms.NumberInput(attrs={"class": "qty-input", "inputmode": "numeric"}),
    )


class UpdateQuantityForm(forms.Form):
    """0 removes the line, which is what a customer typing 0 means."""

    quantity = forms.IntegerField(
        label="数量",
        min_value=0,
        max_value=MAX_QUANTITY,
        error_messages={
            "required": "数量を入力してください。",
            "invalid": "数量は整数で入力してください。",
            "min_value": "数量は0以上で入力してください。",
            "max_value": f"数量は{MAX_QUANTITY}以下で入力してください。",
        },
        widget=forms.NumberInput(attrs={"class": "qty-input", "inputmode": "numeric"}),
    )
