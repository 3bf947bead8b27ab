from django.contrib import admin

from django_crosssell.admin import ProductRelationInline

from .models import Category, Product


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "sku", "price", "is_active"]
    search_fields = ["name", "sku"]
    inlines = [ProductRelationInline]
