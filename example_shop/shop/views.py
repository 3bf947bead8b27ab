"""Storefront views of the example shop: catalogue, session cart, checkout and order history.

Cart changes are POST-only with CSRF and answer with a redirect and a message (never a 500
on bad input), so reloading a page never repeats an action.
"""

from __future__ import annotations

import logging
from itertools import groupby

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, F, Prefetch, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from django_crosssell import bundles, measure
from django_crosssell import cache as crosssell_cache
from django_crosssell.followup import consent, flows
from django_crosssell.models import BundleRule, ConsentEvent, Purpose

from .cart import MAX_QUANTITY, Cart, get_cart
from .followup_demo import CHECKOUT_CONSENT
from .formatting import yen
from .forms import AddToCartForm, UpdateQuantityForm
from .models import Category, Order, OrderDiscount, OrderLine, Product

logger = logging.getLogger(__name__)

LAST_ORDER_KEY = "shop_last_order"
CONFIRM_SALT = "shop.checkout.confirmed"
#: What the checkout checkbox agrees to.
CONSENT_PURPOSES = (Purpose.CROSS_SELL, Purpose.REPLENISHMENT)
ORDERS_PER_PAGE = 20
PRODUCTS_PER_PAGE = 24


def _categories_with_products() -> list[Category]:
    return list(
        Category.objects.annotate(
            active_count=Count("products", filter=Q(products__is_active=True))
        )
        .filter(active_count__gt=0)
        .order_by("position", "name")  # aggregation drops Meta.ordering
    )


def product_list(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """Active products grouped by category (one category's, or those matching ``q``), a page
    of :data:`PRODUCTS_PER_PAGE` at a time."""
    categories = _categories_with_products()
    products = Product.objects.filter(is_active=True).order_by(
        "category__position", "category__name", "category_id", "name", "pk"
    )
    current = None
    if slug is not None:
        current = get_object_or_404(Category, slug=slug)
        products = products.filter(category=current)
    query = " ".join(request.GET.get("q", "").split())[:100]
    for word in query.split(" ") if query else []:
        products = products.filter(
            Q(name__icontains=word) | Q(description__icontains=word) | Q(category__name=word)
        )
    page = Paginator(products, PRODUCTS_PER_PAGE).get_page(request.GET.get("page"))
    by_id = {category.pk: category for category in categories}
    if current is not None:
        by_id.setdefault(current.pk, current)
    sections = [
        (by_id[category_id], list(items))
        for category_id, items in groupby(page.object_list, key=lambda p: p.category_id)
        if category_id in by_id
    ]
    return render(
        request,
        "shop/product_list.html",
        {
            "categories": categories,
            "current_category": current,
            "sections": sections,
            "page": page,
            "query": query,
        },
    )


def product_detail(request: HttpRequest, slug: str) -> HttpResponse:
    product = get_object_or_404(
        Product.objects.select_related("category"), slug=slug, is_active=True
    )
    return render(
        request,
        "shop/product_detail.html",
        {"product": product, "form": AddToCartForm(), "category": product.category},
    )


def _back(request: HttpRequest, default: str) -> HttpResponse:
    """Redirect to ``next`` when it points at this site (widgets post from any page)."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(default)


def _form_errors(request: HttpRequest, form) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


def _stock_error(request: HttpRequest, product: Product) -> None:
    if product.stock == 0:
        messages.error(request, f"「{product.name}」は在庫切れです。")
    else:
        messages.error(request, f"「{product.name}」の在庫が足りません（残り{product.stock}点）。")


@require_POST
def cart_add(request: HttpRequest, product_id: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=product_id, is_active=True)
    form = AddToCartForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return _back(request, product.get_absolute_url())
    cart = get_cart(request)
    quantity = form.cleaned_data["quantity"]
    if cart.quantity_of(product) + quantity > product.stock:
        _stock_error(request, product)
        return _back(request, product.get_absolute_url())
    cart.add(product, quantity)
    measure.track_add_to_cart(request, product)  # counts when it follows a recommendation
    messages.success(request, f"「{product.name}」をカートに追加しました。")
    return _back(request, reverse("shop:cart"))


@require_POST
def cart_add_many(request: HttpRequest) -> HttpResponse:
    """ "Add all" of bought-together and bundle sets: one ``product`` field per unit.

    Every unit is added or none: a set with one item sold out must not land half in the cart.
    """
    ids = request.POST.getlist("product")
    if not ids or not all(value.isdigit() for value in ids) or len(ids) > MAX_QUANTITY:
        messages.error(request, "カートに入れる商品を選んでください。")
        return _back(request, reverse("shop:product_list"))
    wanted: dict[int, int] = {}
    for value in ids:
        wanted[int(value)] = wanted.get(int(value), 0) + 1
    products = {p.pk: p for p in Product.objects.filter(pk__in=wanted, is_active=True)}
    cart = get_cart(request)
    for pk, quantity in wanted.items():
        product = products.get(pk)
        if product is None:
            messages.error(request, "販売を終了した商品が含まれています。")
            return _back(request, reverse("shop:product_list"))
        if cart.quantity_of(product) + quantity > product.stock:
            _stock_error(request, product)
            return _back(request, reverse("shop:cart"))
    for pk, quantity in wanted.items():
        cart.add(products[pk], quantity)
    messages.success(request, f"{sum(wanted.values())}点をカートに追加しました。")
    return _back(request, reverse("shop:cart"))


def bundle_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The products that count towards a bundle offer ("any 2 teas"), with cart buttons."""
    rule = get_object_or_404(BundleRule, slug=slug)
    if not rule.is_current(timezone.now()):
        raise Http404("この特典は終了しました。")
    offer = bundles.preview(rule)
    return render(
        request,
        "shop/bundle_detail.html",
        {
            "rule": rule,
            "offer": offer,
            "products": bundles.qualifying_products(rule),
            "form": AddToCartForm(),
        },
    )


@require_POST
def cart_update(request: HttpRequest, product_id: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=product_id)
    form = UpdateQuantityForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("shop:cart")
    cart = get_cart(request)
    quantity = form.cleaned_data["quantity"]
    if quantity == 0:
        cart.remove(product)
        messages.success(request, f"「{product.name}」をカートから削除しました。")
    elif not product.is_active:
        cart.remove(product)
        messages.error(request, f"「{product.name}」は販売を終了しました。")
    elif quantity > product.stock:
        _stock_error(request, product)
    else:
        cart.set(product, quantity)
        messages.success(request, f"「{product.name}」の数量を{quantity}に変更しました。")
    return redirect("shop:cart")


@require_POST
def cart_remove(request: HttpRequest, product_id: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=product_id)
    get_cart(request).remove(product)
    messages.success(request, f"「{product.name}」をカートから削除しました。")
    return _back(request, reverse("shop:cart"))


DISCOUNTS_UNAVAILABLE = (
    "ただいまセット割引を計算できないため、割引前の金額を表示しています。"
    "しばらくしてからもう一度お試しください。"
)


def cart_detail(request: HttpRequest) -> HttpResponse:
    cart = get_cart(request)
    if cart.lines:
        cart.bundle_evaluation  # noqa: B018  (evaluated now, once, so a timeout can be told)
        if cart.discounts_unavailable:
            messages.warning(request, DISCOUNTS_UNAVAILABLE)
    rows = [
        (
            line,
            UpdateQuantityForm(
                initial={"quantity": line.quantity}, auto_id=f"id_%s_{line.product.pk}"
            ),
        )
        for line in cart.lines
    ]
    return render(request, "shop/cart.html", {"rows": rows})


class OutOfStock(Exception):
    def __init__(self, product: Product) -> None:
        super().__init__(product.name)
        self.product = product


def place_order(cart: Cart, customer) -> Order:
    """Turn the cart into a paid order, taking the units out of stock atomically.

    The stock decrement is a conditional UPDATE, so two customers buying the last unit at
    the same time cannot both succeed; any shortfall rolls the whole order back.
    """
    lines = cart.lines
    with transaction.atomic():
        for line in lines:
            updated = Product.objects.filter(
                pk=line.product.pk, is_active=True, stock__gte=line.quantity
            ).update(stock=F("stock") - line.quantity)
            if not updated:
                line.product.refresh_from_db(fields=["stock", "is_active"])
                raise OutOfStock(line.product)
        # update() sends no signal: a product that just sold out must leave the widgets now,
        # not when their cache expires, so tell django-crosssell (only when it matters).
        if Product.objects.filter(pk__in=[line.product.pk for line in lines], stock=0).exists():
            transaction.on_commit(crosssell_cache.invalidate)
        order = Order.objects.create(
            customer=customer,
            status=Order.Status.PAID,
            subtotal=cart.subtotal,
            discount=cart.discount,
            total=cart.total,
        )
        OrderLine.objects.bulk_create(
            OrderLine(
                order=order,
                product=line.product,
                product_name=line.product.name,
                quantity=line.quantity,
                unit_price=line.unit_price,
            )
            for line in lines
        )
        OrderDiscount.objects.bulk_create(
            OrderDiscount(
                order=order, name=applied.name, rule_slug=applied.rule_slug, amount=applied.amount
            )
            for applied in cart.applied_discounts
            if applied.amount > 0
        )
    return order


def _consent_state(request: HttpRequest) -> str:
    """What the checkout asks: "offer" (the checkbox, unchecked), "given" (agreed before),
    or "" (a guest, or an account without an e-mail address: nothing to ask)."""
    user = request.user
    if not user.is_authenticated or not user.email:
        return ""
    agreed = all(
        consent.has_consent(purpose, customer=user.pk, email=user.email)
        for purpose in CONSENT_PURPOSES
    )
    return "given" if agreed else "offer"


def _after_order(request: HttpRequest, order: Order) -> None:
    """Record the checkbox in the consent ledger and schedule the follow-up mails.

    The demo takes payment at once, so the order is paid now. Neither may break a checkout
    that already succeeded."""
    try:
        user = request.user
        if request.POST.get("marketing_consent") and _consent_state(request) == "offer":
            consent.grant(
                CONSENT_PURPOSES,
                source=ConsentEvent.Source.CHECKOUT,
                customer=user.pk,
                email=user.email,
                text=CHECKOUT_CONSENT,
            )
        flows.order_paid(order)
    except Exception:
        logger.exception("follow-up mail for order %s could not be scheduled", order.pk)


def confirmed_terms(cart: Cart) -> dict:
    """What the confirmation page shows the customer: every price, discount and the total."""
    return {
        "total": int(cart.total),
        "lines": {
            str(line.product.pk): [line.product.name, int(line.unit_price), line.quantity]
            for line in cart.lines
        },
        "discounts": {d.name: int(d.amount) for d in cart.applied_discounts if d.amount > 0},
    }


def changed_terms(before: dict, now: dict) -> list[str]:
    """Sentences saying what changed since the confirmation page (empty: nothing did)."""
    changes = []
    for pk, (name, price, quantity) in before.get("lines", {}).items():
        current = now["lines"].get(pk)
        if current is None:
            changes.append(f"「{name}」は販売を終了したため、カートから外れました。")
        elif current[1] != price:
            changes.append(
                f"「{name}」の価格が {yen(price)} から {yen(current[1])} に変わりました。"
            )
        elif current[2] != quantity:
            changes.append(f"「{name}」の数量が {quantity} から {current[2]} に変わりました。")
    for name, amount in before.get("discounts", {}).items():
        current_amount = now["discounts"].get(name)
        if current_amount is None:
            changes.append(f"割引「{name}」（{yen(amount)}）が適用されなくなりました。")
        elif current_amount != amount:
            changes.append(
                f"割引「{name}」が {yen(amount)} から {yen(current_amount)} に変わりました。"
            )
    for name, amount in now["discounts"].items():
        if name not in before.get("discounts", {}):
            changes.append(f"割引「{name}」（{yen(amount)}）が新たに適用されました。")
    if before.get("total") != now["total"] and not changes:
        changes.append("お支払い金額が変わりました。")
    if changes:
        changes.append(f"お支払い金額: {yen(before.get('total', 0))} → {yen(now['total'])}")
    return changes


def checkout(request: HttpRequest) -> HttpResponse:
    """GET shows the confirmation; POST places the order (no payment in the demo).

    The confirmation form carries what it showed (signed). A POST re-evaluates the cart and,
    when a price, a discount or the total changed meanwhile (a bundle switched off, a price
    raised), shows the confirmation again with what changed instead of charging a total the
    customer never saw.
    """
    cart = get_cart(request)
    if not cart.lines:
        messages.error(request, "カートが空のため、注文できません。")
        return redirect("shop:cart")
    terms = confirmed_terms(cart)
    changes: list[str] = []
    if request.method == "POST" and "confirmed" in request.POST:
        try:
            before = signing.loads(request.POST["confirmed"], salt=CONFIRM_SALT, max_age=86400)
        except signing.BadSignature:
            before = {}
        changes = changed_terms(before, terms) if before else ["ご注文内容を確認してください。"]
    if cart.discounts_unavailable:  # evaluated by confirmed_terms(): never charge without
        messages.error(request, DISCOUNTS_UNAVAILABLE)
        return redirect("shop:cart")
    if request.method == "POST" and not changes:
        customer = request.user if request.user.is_authenticated else None
        try:
            order = place_order(cart, customer)
        except OutOfStock as exc:
            _stock_error(request, exc.product)
            return redirect("shop:cart")
        _after_order(request, order)
        # Attribute the order's lines to the recommendations clicked before it (README,
        # "Measuring the effect"); never raises.
        measure.attribute_order(order, request=request)
        cart.clear()
        request.session[LAST_ORDER_KEY] = order.pk
        return redirect("shop:checkout_complete")
    return render(
        request,
        "shop/checkout.html",
        {
            "consent_state": _consent_state(request),
            "consent_text": CHECKOUT_CONSENT.text,
            "confirmed": signing.dumps(terms, salt=CONFIRM_SALT, compress=True),
            "changes": changes,
        },
        status=409 if changes else 200,
    )


def checkout_complete(request: HttpRequest) -> HttpResponse:
    """Thank-you page; only the session that placed the order can see it (guests too)."""
    order_id = request.session.get(LAST_ORDER_KEY)
    order = (
        Order.objects.prefetch_related("lines", "discounts").filter(pk=order_id).first()
        if isinstance(order_id, int)
        else None
    )
    if order is None:
        return redirect("shop:product_list")
    return render(request, "shop/checkout_complete.html", {"order": order})


@login_required
def order_list(request: HttpRequest) -> HttpResponse:
    orders = (
        Order.objects.filter(customer=request.user)
        .annotate(line_count=Count("lines"), unit_count=Sum("lines__quantity"))
        .order_by("-placed_at", "-pk")
    )  # aggregation drops Meta.ordering
    page = Paginator(orders, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "shop/order_list.html", {"page": page, "orders": page.object_list})


@login_required
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(
        Order.objects.prefetch_related(
            Prefetch("lines", queryset=OrderLine.objects.select_related("product").order_by("pk")),
            Prefetch("discounts", queryset=OrderDiscount.objects.order_by("pk")),
        ),
        pk=pk,
        customer=request.user,
    )
    return render(request, "shop/order_detail.html", {"order": order})
