"""Sandboxed templates and rendering to Markdown, HTML, email, SMS, Word and PDF; the document registry."""
