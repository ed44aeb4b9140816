// The conversation's dialogs: forwarding a message, opening a ticket from the chat.
import { useState } from "preact/hooks";
import { get, post, query } from "../../api.js";
import { Avatar, Field, Loading, Modal, toast, useLoad, useSettled } from "../ui.jsx";
import { t } from "../../i18n.js";
import { paths } from "../../paths.js";
import { priorityName } from "../../words.js";

export function ForwardDialog({ message, from, onClose }) {
  const [search, setSearch] = useState("");
  const searching = useSettled(search);
  const found = useLoad(
    () => get(query(paths.inbox.conversations, { q: searching.trim(), limit: 20 })).then((page) => page.items.filter((item) => item.id !== from)),
    [searching],
  );
  const forward = async (target) => {
    try {
      await post(paths.inbox.forward(from, message.id), { conversation_id: target.id });
      toast(t("Forwarded to {name}", { name: target.customer.name }));
      onClose();
    } catch (error) {
      toast(error.message, "error");
    }
  };
  return (
    <Modal title={t("Forward to…")} onClose={onClose}>
      <input type="search" placeholder={t("Search name, phone or text")} value={search} onInput={(event) => setSearch(event.currentTarget.value)} />
      <Loading state={found}>
        {(items) => (
          <ul class="pick-list">
            {items.map((item) => (
              <li key={item.id}>
                <button type="button" onClick={() => forward(item)}>
                  <Avatar name={item.customer.name} /> {item.customer.name} <span class="muted" dir="ltr">{item.customer.phone}</span>
                </button>
              </li>
            ))}
          </ul>
        )}
      </Loading>
    </Modal>
  );
}

export function TicketDialog({ chat, draft, onClose }) {
  const [values, setValues] = useState({
    title: draft.title || "",
    priority: draft.priority || "normal",
    description: draft.description || "",
  });
  const [errors, setErrors] = useState({});
  const submit = async (event) => {
    event.preventDefault();
    try {
      const ticket = await post(paths.tickets.list, {
        title: values.title,
        priority: values.priority,
        description: values.description || null,
        conversation_id: chat.id,
      });
      toast(t("Ticket #{number} created", { number: ticket.number }));
      onClose();
    } catch (error) {
      setErrors(error.fields || { title: error.message });
    }
  };
  const set = (name) => (event) => setValues({ ...values, [name]: event.currentTarget.value });
  return (
    <Modal title={t("Create a ticket from this chat")} onClose={onClose}>
      <form class="stack" onSubmit={submit}>
        <Field label={t("Title")} error={errors.title}>
          <input name="title" required value={values.title} onInput={set("title")} />
        </Field>
        <Field label={t("Priority")} error={errors.priority}>
          <select name="priority" value={values.priority} onChange={set("priority")}>
            {["low", "normal", "high", "urgent"].map((value) => (
              <option value={value}>{priorityName(value)}</option>
            ))}
          </select>
        </Field>
        <Field label={t("Description")} error={errors.description}>
          <textarea name="description" rows={3} value={values.description} onInput={set("description")} />
        </Field>
        <button type="submit" class="primary">{t("Create the ticket")}</button>
      </form>
    </Modal>
  );
}
