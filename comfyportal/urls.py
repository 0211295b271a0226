from django.contrib import admin
from django.urls import include, path

from comfyportal.api import api
from comfyportal.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("metrics", metrics_view, name="metrics"),
    path("", include("comfyportal.page_urls")),
]
