"""The /search page: a thin adapter over search.selectors."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from . import selectors
from .forms import SearchQuerySerializer


@login_required
@require_GET
def search_page(request: HttpRequest) -> HttpResponse:
    results, error, status = None, "", 200
    if "q" in request.GET:
        query = SearchQuerySerializer(data={"q": request.GET["q"]})
        if query.is_valid():
            results = selectors.search(viewer=request.user, query=query.validated_data["q"])
        else:
            error, status = str(query.errors["q"][0]), 400
    return render(
        request,
        "search/search.html",
        {"results": results, "error": error, "q": request.GET.get("q", "")},
        status=status,
    )
