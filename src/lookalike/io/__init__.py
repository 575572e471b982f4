"""Reading stage: find files (crawl), decode images (read), fetch URLs (fetch)."""
