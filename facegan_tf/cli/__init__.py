"""Command-line front ends: every absl flag definition and every main() lives here."""
