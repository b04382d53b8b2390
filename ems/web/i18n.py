"""Labels in Japanese and English. A template calls ``t("key")``; a missing key shows the key.

The language is the ``ems_lang`` cookie when set (the switch in the header), else the
config's ``console.locale``. Add a page's labels to ``LABELS`` (or ``LABELS.update`` from the
page module) with both languages.
"""

from __future__ import annotations

LANGUAGES = ("ja", "en")

LABELS: dict[str, dict[str, str]] = {
    "app.title": {"ja": "運用コンソール", "en": "Operators' console"},
    "nav.now": {"ja": "現在", "en": "Now"},
    "nav.schedule": {"ja": "計画", "en": "Schedule"},
    "nav.fleet": {"ja": "車両", "en": "Fleet"},
    "nav.devices": {"ja": "機器", "en": "Devices"},
    "nav.audit": {"ja": "操作記録", "en": "Audit log"},
    "login.title": {"ja": "ログイン", "en": "Log in"},
    "login.user": {"ja": "ユーザー名", "en": "User name"},
    "login.password": {"ja": "パスワード", "en": "Password"},
    "login.submit": {"ja": "ログイン", "en": "Log in"},
    "login.failed": {"ja": "ユーザー名またはパスワードが違います", "en": "Wrong user name or password"},
    "login.throttled": {
        "ja": "ログインの失敗が続いたため、しばらく受け付けません",
        "en": "Too many failed logins: try again later",
    },
    "login.no_users": {
        "ja": "ユーザーがいません: ems users add NAME --role operator で作成してください",
        "en": "No users yet: create one with ems users add NAME --role operator",
    },
    "logout": {"ja": "ログアウト", "en": "Log out"},
    "role.viewer": {"ja": "閲覧", "en": "viewer"},
    "role.operator": {"ja": "運用者", "en": "operator"},
    "error.forbidden": {"ja": "この操作には運用者の権限が必要です", "en": "This action needs the operator role"},
    "error.csrf": {
        "ja": "フォームの有効期限が切れました。ページを再読み込みしてください",
        "en": "The form expired: reload the page and try again",
    },
    "time.zone_note": {"ja": "時刻は日本時間", "en": "Times in Japan Standard Time"},
    "slot": {"ja": "コマ", "en": "slot"},
    "none": {"ja": "なし", "en": "none"},
    "print": {"ja": "印刷", "en": "Print"},
}


def translate(key: str, language: str) -> str:
    entry = LABELS.get(key)
    if entry is None:
        return key
    return entry.get(language) or entry.get("en") or key


def pick_language(cookie: str | None, default: str) -> str:
    return cookie if cookie in LANGUAGES else (default if default in LANGUAGES else "ja")
