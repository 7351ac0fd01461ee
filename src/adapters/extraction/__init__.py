"""Text extraction (the TextExtractor port): PDF by pypdf, HTML by BeautifulSoup, DOCX by
python-docx, Markdown by markdown-it-py, each file read in a child process that a time and
memory limit stop."""
