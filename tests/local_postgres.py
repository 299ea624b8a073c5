"""`make test`'s choice of PostgreSQL: prints the suite's database URL on the local server when one
answers at 127.0.0.1:5432 (user postgres, no password), nothing otherwise.

The database (`mets_test`, and `mets_test_gw0`, ... for pytest-xdist's workers) need not exist:
the suite creates what it uses (tests/database.py).
"""
import sys

URL = "postgresql+psycopg://postgres@127.0.0.1:5432/mets_test"


def answers() -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    try:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"):
            return True
    except psycopg.Error:
        return False


if __name__ == "__main__":
    if answers():
        print(URL)
    sys.exit(0)
