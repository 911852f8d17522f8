"""Trainers (one per model family) and the loop pieces they share."""
