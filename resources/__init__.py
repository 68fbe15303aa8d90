"""The apps' assets (icons, desktop entries, AppStream metadata), installed as ``coalesce_resources``.

No code here: the file makes ``resources/`` a regular package so that ``importlib.resources`` finds it the
same way in a wheel, an editable install and a Briefcase bundle (see setup.py and
:mod:`coalesce_common.resources`).
"""
