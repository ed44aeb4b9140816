"""Outgoing e-mail over SMTP; without SMTP configured, the message goes to the server log."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage

import structlog

from hub.config import Settings

log = structlog.get_logger(__name__)


async def send_mail(settings: Settings, *, to: str, subject: str, body: str) -> None:
    if not settings.smtp_host:
        # No mail server: whoever runs the hub reads the message (and its link) in the log.
        log.warning("mail not sent: SMTP is not configured", mail_to=to, subject=subject, body=body)
        return
    message = EmailMessage()
    message["From"] = settings.smtp_sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)

    def deliver() -> None:
        with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=30) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(message)

    await asyncio.to_thread(deliver)
    log.info("mail sent", mail_to=to, subject=subject)
