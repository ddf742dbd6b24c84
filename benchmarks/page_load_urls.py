"""URLs for benchmarks/bench_page_load.py: the example site, plus its home page without the
widget (the reference) and the static files (daphne serves none itself)."""

from django.contrib.staticfiles.views import serve
from django.shortcuts import render
from django.urls import path, re_path

from example_site.shop.models import Product
from example_site.urls import urlpatterns as example_urlpatterns


def home_without_widget(request):
    return render(request, "bench/home_without_widget.html", {"products": Product.objects.all()})


urlpatterns = [
    path("bench/without-widget/", home_without_widget),
    re_path(r"^static/(?P<path>.*)$", serve, {"insecure": True}),
    *example_urlpatterns,
]
