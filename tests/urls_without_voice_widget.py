"""A URLconf without the voice_widget API, for the template tag's graceful degradation."""

from django.urls import path

from example_site.shop import views

urlpatterns = [path("", views.home, name="home")]
