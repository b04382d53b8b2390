"""The operators' console: FastAPI pages and their JSON twins on the store (docs/console.md).

``create_app`` (in ``ems.web.app``) builds the application; each page is a module of
``ems.web.pages`` listed in ``PAGE_MODULES`` there. Nothing here imports FastAPI at package
import time, so ``ems serve`` can name the missing ``web`` extra instead of failing on import.
"""
