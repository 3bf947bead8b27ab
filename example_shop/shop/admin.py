from django.contrib import admin
from django.utils.html import format_html

from django_crosssell.admin import ProductRelationInline, SlugFromNameMixin, preview_html

from .models import Category, Order, OrderDiscount, OrderLine, Product

# The demo's admin speaks as the shop does (LANGUAGE_CODE "ja"; Django's and
# django-crosssell's own strings come translated).
admin.site.site_header = "ミナト商店 管理画面"
admin.site.site_title = "ミナト商店 管理"
admin.site.index_title = "ショップの管理"


@admin.register(Category)
class CategoryAdmin(SlugFromNameMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "position"]
    search_fields = ["name"]
    slug_prefix = "category"


@admin.register(Product)
class ProductAdmin(SlugFromNameMixin, admin.ModelAdmin):
    list_display = ["name", "category", "price", "stock", "is_active"]
    list_filter = ["category", "is_active"]
    list_select_related = ["category"]
    search_fields = ["name", "slug", "description"]
    inlines = [ProductRelationInline]
    readonly_fields = ["page_preview"]
    slug_prefix = "product"

    @admin.display(description="商品ページに表示される内容")
    def page_preview(self, obj: Product) -> str:
        if obj.pk is None:
            return "保存すると、商品ページのおすすめ欄に表示される内容を確認できます。"
        return format_html("{}", preview_html(obj))


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    raw_id_fields = ["product"]
    extra = 0


class OrderDiscountInline(admin.TabularInline):
    model = OrderDiscount
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["pk", "customer", "status", "placed_at", "total"]
    list_filter = ["status"]
    list_select_related = ["customer"]
    date_hierarchy = "placed_at"
    raw_id_fields = ["customer"]
    inlines = [OrderLineInline, OrderDiscountInline]
