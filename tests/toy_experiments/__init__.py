"""Tests of toy_experiments (mirrors the package tree)."""
