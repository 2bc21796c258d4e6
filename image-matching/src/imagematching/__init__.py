"""Wikimedia's Image Matching Algorithm: image candidates for unillustrated Wikipedia articles."""
