"""Small building blocks shared by the sender's views: headings, message labels, sizes in text units."""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QLabel, QWidget

ERROR_COLOUR = QColor(185, 28, 28)
NOTICE_COLOUR = QColor(30, 64, 175)


def heading(text: str, parent: QWidget | None = None, *, scale: float = 1.35) -> QLabel:
    label = QLabel(text, parent)
    font = QFont(label.font())
    font.setPointSizeF(font.pointSizeF() * scale)
    font.setBold(True)
    label.setFont(font)
    label.setWordWrap(True)
    return label


def message_label(parent: QWidget | None = None, *, name: str = "") -> QLabel:
    """A word-wrapped label for errors and notices (colour set by :func:`show_message`)."""
    label = QLabel(parent)
    label.setWordWrap(True)
    label.setObjectName(name)
    label.setTextInteractionFlags(label.textInteractionFlags())
    label.hide()
    return label


def show_message(label: QLabel, text: str | None, *, error: bool) -> None:
    """Show ``text`` in red (error) or blue (notice); hide the label when there is none."""
    if not text:
        label.clear()
        label.hide()
        return
    palette = label.palette()
    palette.setColor(QPalette.ColorRole.WindowText, ERROR_COLOUR if error else NOTICE_COLOUR)
    label.setPalette(palette)
    label.setText(text)
    label.show()


def text_width(widget: QWidget, characters: int) -> int:
    """The width of ``characters`` average characters in ``widget``'s font (scales with fonts and DPI)."""
    return widget.fontMetrics().averageCharWidth() * characters


def line_height(widget: QWidget, lines: float = 1.0) -> int:
    return round(widget.fontMetrics().lineSpacing() * lines)
