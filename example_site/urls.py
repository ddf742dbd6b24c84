from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from example_site.shop import views

urlpatterns = [
    path("", views.home, name="home"),
    path("bikes/<slug:slug>/", views.product, name="product"),
    path("contact/", views.contact, name="contact"),
    path("help/", views.help_page, name="help"),
    path("admin/", admin.site.urls),
    path("voice-widget/", include("voice_widget.urls")),
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
