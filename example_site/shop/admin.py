from django.contrib import admin

from .models import OpeningHours, Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "price", "in_stock"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(OpeningHours)
class OpeningHoursAdmin(admin.ModelAdmin):
    list_display = ["weekday", "opens", "closes"]
