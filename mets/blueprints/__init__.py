"""One blueprint per domain; routes parse input, call one service, render."""
