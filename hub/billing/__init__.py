"""Billing through Stripe: the plans the installation sells, each organization's subscription,
and the limits that gate every module (402). Off, with no limits at all, unless
`STRIPE_SECRET_KEY` is set. Inbound messages are never refused, dropped or hidden for billing
reasons."""
