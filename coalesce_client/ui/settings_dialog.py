"""Settings: the name the room display shows, the proxy for the cloud, and enrolling with a cloud.

Save checks the proxy fields first (the form's errors name the field to fix) and then hands everything to
the controller, which writes ``app.json`` and ``sender.json`` and puts any proxy password in the keyring.
When no OS keyring works (the model says why), the dialog says so under the password and offers to use it
for this session only; it never saves a password anywhere else.
Enrolling happens at once with the proxy as currently filled in, since the cloud may only be reachable
through it. Escape or Cancel leaves everything as it was.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QIntValidator
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from coalesce_client.models.proxy_form import ProxyForm, ProxyKind
from coalesce_client.settings import has_password
from coalesce_client.ui.controller import SenderController
from coalesce_client.ui.widgets import message_label, show_message, text_width
from coalesce_common.net.proxy import ProxyMode, ProxySettingsError

_MODES: list[tuple[ProxyMode, str]] = [
    ("system", "Use the system's proxy settings"),
    ("none", "No proxy"),
    ("manual", "This proxy:"),
    ("pac", "A proxy auto-configuration (PAC) file:"),
]


def _ticked(box: QCheckBox) -> bool:
    """Ticked and offered (a hidden box's old tick does not count)."""
    return not box.isHidden() and box.isChecked()


class SettingsDialog(QDialog):
    def __init__(self, controller: SenderController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settings-dialog")
        self.setWindowTitle("Coalesce settings")
        self._controller = controller
        models = controller.models
        self._account = models.account
        self._proxy = models.proxy
        self._unsubscribe: list[Callable[[], None]] = []

        outer = QVBoxLayout(self)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        body = QWidget(scroll)
        layout = QVBoxLayout(body)
        scroll.setWidget(body)
        outer.addWidget(scroll)

        you = QGroupBox("You", body)
        you_form = QFormLayout(you)
        self.name_edit = QLineEdit(models.settings.settings.display_name, you)
        self.name_edit.setObjectName("name-edit")
        self.name_edit.setMaxLength(64)
        you_form.addRow("Your &name on the room display:", self.name_edit)
        layout.addWidget(you)

        proxy = QGroupBox(
            "Proxy (for meeting IDs through the cloud; rooms nearby are reached directly)", body
        )
        proxy_layout = QVBoxLayout(proxy)
        self.mode_group = QButtonGroup(self)
        self.mode_buttons: dict[ProxyMode, QRadioButton] = {}
        for position, (mode, text) in enumerate(_MODES):
            button = QRadioButton(text, proxy)
            button.setObjectName(f"proxy-{mode}")
            self.mode_group.addButton(button, position)
            self.mode_buttons[mode] = button
            proxy_layout.addWidget(button)
            if mode == "manual":
                manual = QFormLayout()
                self.kind_combo = QComboBox(proxy)
                self.kind_combo.setObjectName("proxy-kind")
                self.kind_combo.addItem("HTTP", "http")
                self.kind_combo.addItem("SOCKS5", "socks5")
                manual.addRow("&Type:", self.kind_combo)
                self.host_edit = QLineEdit(proxy)
                self.host_edit.setObjectName("proxy-host")
                self.host_edit.setPlaceholderText("proxy.example.com")
                manual.addRow("&Host:", self.host_edit)
                self.port_edit = QLineEdit(proxy)
                self.port_edit.setObjectName("proxy-port")
                self.port_edit.setValidator(QIntValidator(1, 65535, self.port_edit))
                self.port_edit.setPlaceholderText("3128")
                self.port_edit.setMaximumWidth(text_width(self, 12))
                manual.addRow("P&ort:", self.port_edit)
                proxy_layout.addLayout(manual)
            if mode == "pac":
                pac = QFormLayout()
                self.pac_edit = QLineEdit(proxy)
                self.pac_edit.setObjectName("proxy-pac")
                self.pac_edit.setPlaceholderText("http://wpad.example.com/proxy.pac")
                pac.addRow("PAC &address:", self.pac_edit)
                proxy_layout.addLayout(pac)
        credentials = QFormLayout()
        self.user_edit = QLineEdit(proxy)
        self.user_edit.setObjectName("proxy-user")
        self.user_edit.setPlaceholderText("only if the proxy asks for one")
        credentials.addRow("Proxy &user:", self.user_edit)
        self.password_edit = QLineEdit(proxy)
        self.password_edit.setObjectName("proxy-password")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        credentials.addRow("Pass&word:", self.password_edit)
        proxy_layout.addLayout(credentials)
        self.kept_label = QLabel("The password is kept in the system's keyring, not in a file.", proxy)
        self.kept_label.setObjectName("password-kept")
        self.kept_label.setWordWrap(True)
        proxy_layout.addWidget(self.kept_label)
        self.keyring_problem = message_label(proxy, name="keyring-problem")
        proxy_layout.addWidget(self.keyring_problem)
        self.session_only_box = QCheckBox("Use the password for this &session only (it is not saved)", proxy)
        self.session_only_box.setObjectName("session-only")
        proxy_layout.addWidget(self.session_only_box)
        self.proxy_error = message_label(proxy, name="proxy-error")
        proxy_layout.addWidget(self.proxy_error)
        layout.addWidget(proxy)

        cloud = QGroupBox("Cloud (meeting IDs)", body)
        cloud_layout = QVBoxLayout(cloud)
        self.account_label = QLabel(cloud)
        self.account_label.setObjectName("account-status")
        self.account_label.setWordWrap(True)
        cloud_layout.addWidget(self.account_label)
        cloud_form = QFormLayout()
        settings = models.settings.settings
        self.cloud_edit = QLineEdit(settings.cloud_url or models.account.api_url, cloud)
        self.cloud_edit.setObjectName("cloud-url")
        self.cloud_edit.setPlaceholderText("https://coalesce.example.com")
        cloud_form.addRow("Cloud &address:", self.cloud_edit)
        self.code_edit = QLineEdit(cloud)
        self.code_edit.setObjectName("enroll-code")
        self.code_edit.setPlaceholderText("from your IT administrator")
        cloud_form.addRow("Enrollment &code:", self.code_edit)
        ca_row = QHBoxLayout()
        self.ca_edit = QLineEdit(settings.cloud_ca, cloud)
        self.ca_edit.setObjectName("cloud-ca")
        self.ca_edit.setPlaceholderText("only for a self-hosted cloud")
        ca_browse = QPushButton("&Browse…", cloud)
        ca_browse.clicked.connect(self._choose_ca)
        ca_row.addWidget(self.ca_edit, 1)
        ca_row.addWidget(ca_browse)
        ca_label = QLabel("CA c&ertificate:", cloud)
        ca_label.setBuddy(self.ca_edit)
        cloud_form.addRow(ca_label, ca_row)
        cloud_layout.addLayout(cloud_form)
        self.enroll_session_only_box = QCheckBox(
            "Enroll for this session &only (no keyring keeps the credentials)", cloud
        )
        self.enroll_session_only_box.setObjectName("enroll-session-only")
        cloud_layout.addWidget(self.enroll_session_only_box)
        enroll_row = QHBoxLayout()
        enroll_row.addStretch(1)
        self.enroll_button = QPushButton("&Enroll this computer", cloud)
        self.enroll_button.setObjectName("enroll-button")
        self.enroll_button.setAutoDefault(False)
        self.enroll_button.clicked.connect(self._enroll)
        enroll_row.addWidget(self.enroll_button)
        cloud_layout.addLayout(enroll_row)
        self.enroll_message = message_label(cloud, name="enroll-message")
        cloud_layout.addWidget(self.enroll_message)
        layout.addWidget(cloud)
        layout.addStretch(1)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setDefault(True)
        self.buttons.accepted.connect(self._save)
        self.buttons.rejected.connect(self.reject)
        outer.addWidget(self.buttons)

        self._load_form(ProxyForm.from_config(models.proxy.config))
        self.mode_group.idToggled.connect(lambda *_: self._enable_fields())
        self._unsubscribe.append(self._account.subscribe(self._sync_account))
        self._sync_account()
        self.session_only_box.setChecked(models.proxy.session_only)
        self._unsubscribe.append(self._proxy.subscribe(self._sync_keyring))
        self._sync_keyring()
        self.finished.connect(self._detach)
        body.setMinimumWidth(text_width(self, 64))
        margins = outer.contentsMargins()
        extra = margins.top() + margins.bottom() + outer.spacing() + self.buttons.sizeHint().height()
        self.resize(
            body.sizeHint().width() + text_width(self, 6), min(body.sizeHint().height() + extra + 8, 900)
        )

    def _detach(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    # -- the proxy form ---------------------------------------------------------------------------

    def _load_form(self, form: ProxyForm) -> None:
        self.mode_buttons[form.mode].setChecked(True)
        self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(form.kind)))
        self.host_edit.setText(form.host)
        self.port_edit.setText(str(form.port) if form.port else "")
        self.pac_edit.setText(form.pac_url)
        self.user_edit.setText(form.username)
        self.password_edit.setText(form.password)
        self._enable_fields()

    def form(self) -> ProxyForm:
        mode = next(m for m, button in self.mode_buttons.items() if button.isChecked())
        kind: ProxyKind = "socks5" if self.kind_combo.currentData() == "socks5" else "http"
        port_text = self.port_edit.text().strip()
        return ProxyForm(
            mode=mode,
            kind=kind,
            host=self.host_edit.text(),
            port=int(port_text) if port_text.isdigit() else None,
            username=self.user_edit.text(),
            password=self.password_edit.text(),
            pac_url=self.pac_edit.text(),
        )

    def _enable_fields(self) -> None:
        mode = self.form().mode
        for widget in (self.kind_combo, self.host_edit, self.port_edit):
            widget.setEnabled(mode == "manual")
        self.pac_edit.setEnabled(mode == "pac")
        for widget in (self.user_edit, self.password_edit):
            widget.setEnabled(mode in ("manual", "pac"))
        show_message(self.proxy_error, None, error=True)

    # -- actions ----------------------------------------------------------------------------------

    def _sync_keyring(self) -> None:
        problem = self._proxy.keyring_problem
        self.kept_label.setVisible(problem is None)
        show_message(self.keyring_problem, problem, error=True)
        self.session_only_box.setVisible(problem is not None or self._proxy.session_only)
        self.enroll_session_only_box.setVisible(problem is not None)

    def _save(self) -> None:
        try:
            config = self.form().to_config()
        except ProxySettingsError as exc:
            show_message(self.proxy_error, str(exc), error=True)
            return
        session_only = _ticked(self.session_only_box)
        if has_password(config) and self._proxy.keyring_problem is not None and not session_only:
            show_message(
                self.proxy_error,
                "The password cannot be saved on this computer (see above): tick “for this session only”, "
                "or leave the password empty.",
                error=True,
            )
            return
        self._controller.save_settings(
            display_name=self.name_edit.text(),
            proxy=config,
            session_only=session_only and has_password(config),
        )
        self.accept()

    def _enroll(self) -> None:
        try:
            proxy = self.form().to_config()
        except ProxySettingsError as exc:
            show_message(self.proxy_error, str(exc), error=True)
            return
        self._controller.enroll(
            url=self.cloud_edit.text(),
            code=self.code_edit.text(),
            ca_file=self.ca_edit.text(),
            proxy=proxy,
            session_only=_ticked(self.enroll_session_only_box),
        )

    def _choose_ca(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "The cloud's CA certificate", "", "Certificates (*.crt *.pem);;All files (*)"
        )
        if path:
            self.ca_edit.setText(path)

    def _sync_account(self) -> None:
        account = self._account
        self.account_label.setText(account.describe())
        self.enroll_button.setEnabled(not account.enrolling)
        if account.error:
            show_message(self.enroll_message, account.error, error=True)
        else:
            show_message(self.enroll_message, account.message, error=False)
