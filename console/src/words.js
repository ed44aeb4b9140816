// Names of the hub's fixed values in the reader's language.
import { t } from "./i18n.js";

export const roleName = (role) =>
  ({ admin: t("admin"), manager: t("manager"), agent: t("agent"), member: t("member") })[role] || role;

export const conversationStatusName = (status) =>
  ({ open: t("Open"), pending: t("Pending"), snoozed: t("Snoozed"), resolved: t("Resolved") })[status] || status;

export const messageStatusName = (status) =>
  ({
    queued: t("Queued"),
    sent: t("Sent"),
    delivered: t("Delivered"),
    read: t("Read"),
    failed: t("Failed"),
    unknown: t("May not have been sent: the channel could not confirm it"),
    received: t("Received"),
  })[status] || status;

export const ticketStatusName = (status) =>
  ({
    open: t("Open"),
    in_progress: t("In progress"),
    waiting_on_customer: t("Waiting on customer"),
    resolved: t("Resolved"),
    closed: t("Closed"),
  })[status] || status;

export const priorityName = (priority) =>
  ({ low: t("Low"), normal: t("Normal"), high: t("High"), urgent: t("Urgent") })[priority] || priority;

export const campaignStatusName = (status) =>
  ({
    draft: t("Draft"),
    building: t("Preparing recipients"),
    scheduled: t("Scheduled"),
    running: t("Sending"),
    paused: t("Paused"),
    completed: t("Completed"),
    cancelled: t("Cancelled"),
    failed: t("Failed"),
  })[status] || status;

export const channelStateName = (state) =>
  ({
    new: t("Not connected"),
    failed: t("Failed"),
    connecting: t("Connecting"),
    qr: t("Waiting for the QR code to be scanned"),
    ready: t("Ready"),
    connected: t("Ready"),
    disconnected: t("Disconnected"),
    logged_out: t("Logged out"),
    active: t("Active"),
  })[state] || state;

export const languageName = (code) => ({ ar: "العربية", en: "English" })[code] || code;
