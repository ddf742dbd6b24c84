from django.shortcuts import get_object_or_404, render

from .models import OpeningHours, Product


def home(request):
    return render(request, "home.html", {"products": Product.objects.all()})


def product(request, slug: str):
    item = get_object_or_404(Product, slug=slug)
    return render(request, "product.html", {"product": item})


def contact(request):
    return render(request, "contact.html", {"hours": OpeningHours.objects.all()})


def help_page(request):
    """A dedicated help page: Ben, full page, is its main content."""
    return render(request, "help.html")
