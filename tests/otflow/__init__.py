"""Tests of the otflow library, mirroring otflow/ (one file per module)."""
