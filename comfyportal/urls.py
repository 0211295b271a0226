from django.contrib import admin
from django.urls import include, path

from comfyportal.api import api
from comfyportal.metrics import metrics_view
from comfyportal.site_views import favicon

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("metrics", metrics_view, name="metrics"),
    path("favicon.ico", favicon, name="favicon"),
    path("", include("comfyportal.page_urls")),
]
