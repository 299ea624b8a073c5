"""The app gunicorn serves in bench/api.py: the README's `wsgi:app`, plus one bare route (no token, no query) that
measures the server's and the app's own cost per request, the ceiling the API's endpoints are compared to."""
from wsgi import app


@app.get("/bench/bare")
def bench_bare():
    return "ok"
