"""CRM rules, one module per idea; everything callers use is re-exported here.

- `identity`: the customer behind a sender, phone numbers read by country
- `customers`: customers and custom attributes, listing and search
- `merge`: two records of one person made one
- `companies`, `pipeline` (stages, deals, the board), `activities` (the timeline)
- `settings`, `opt_out`, `leads` (website forms), `segments`, `scoring`, `imports` (CSV)

What the CRM offers the packages above it (registries they join at start-up) is `crm.hooks`;
what the API carries, `crm.views`.
"""

from __future__ import annotations

from crm.services.activities import (
    add_activity,
    conversation_started,
    record_activities,
    record_activity,
    timeline,
    update_activity,
)
from crm.services.companies import create_company, delete_company, get_company, list_companies, update_company
from crm.services.customers import (
    ATTRIBUTE_KINDS,
    CONTACT_FIELDS,
    EMAIL,
    create_attribute_definition,
    create_customer,
    delete_attribute_definition,
    delete_customer,
    get_customer,
    list_attribute_definitions,
    list_customers,
    update_customer,
)
from crm.services.identity import customer_for_sender, new_customer_for_sender, phone_owner, sender_query
from crm.services.imports import (
    ANALYZE_AFTER_BATCHES,
    FALSE,
    IMPORT_BATCH,
    MAX_IMPORT_ERRORS,
    TRUE,
    TYPE_MISMATCH,
    get_import,
    run_import,
    start_import,
)
from crm.services.leads import CapturedLead, capture_lead, lead_origin_allowed, organization_by_slug
from crm.services.merge import merge_customers
from crm.services.opt_out import MAX_OPT_OUT_LENGTH, asks_to_opt_out, opt_out_customer
from crm.services.pipeline import (
    DEFAULT_CURRENCY,
    DEFAULT_STAGES,
    MAX_AMOUNT,
    board,
    create_deal,
    create_stage,
    delete_deal,
    delete_stage,
    get_deal,
    list_stages,
    update_deal,
    update_stage,
)
from crm.services.scoring import (
    RESCORE_BATCH,
    TEAM_ACTIVITIES,
    note_recent_message,
    rescore,
    rescore_by_id,
    rescore_organization,
    scoring_rules,
)
from crm.services.segments import (
    EXPORT_BATCH,
    count_segment,
    delete_segment,
    export_segment,
    get_segment,
    list_segments,
    save_segment,
    segment_conditions,
    segment_customers,
    segment_filters,
    segment_members,
)
from crm.services.settings import (
    DEFAULT_OPT_OUT_KEYWORDS,
    crm_settings,
    opt_out_keywords_of,
    update_crm_settings,
)

__all__ = [
    "ANALYZE_AFTER_BATCHES",
    "ATTRIBUTE_KINDS",
    "CONTACT_FIELDS",
    "DEFAULT_CURRENCY",
    "DEFAULT_OPT_OUT_KEYWORDS",
    "DEFAULT_STAGES",
    "EMAIL",
    "EXPORT_BATCH",
    "FALSE",
    "IMPORT_BATCH",
    "MAX_AMOUNT",
    "MAX_IMPORT_ERRORS",
    "MAX_OPT_OUT_LENGTH",
    "RESCORE_BATCH",
    "TEAM_ACTIVITIES",
    "TRUE",
    "TYPE_MISMATCH",
    "CapturedLead",
    "add_activity",
    "asks_to_opt_out",
    "board",
    "capture_lead",
    "conversation_started",
    "count_segment",
    "create_attribute_definition",
    "create_company",
    "create_customer",
    "create_deal",
    "create_stage",
    "crm_settings",
    "customer_for_sender",
    "delete_attribute_definition",
    "delete_company",
    "delete_customer",
    "delete_deal",
    "delete_segment",
    "delete_stage",
    "export_segment",
    "get_company",
    "get_customer",
    "get_deal",
    "get_import",
    "get_segment",
    "lead_origin_allowed",
    "list_attribute_definitions",
    "list_companies",
    "list_customers",
    "list_segments",
    "list_stages",
    "merge_customers",
    "new_customer_for_sender",
    "note_recent_message",
    "opt_out_customer",
    "opt_out_keywords_of",
    "organization_by_slug",
    "phone_owner",
    "record_activities",
    "record_activity",
    "rescore",
    "rescore_by_id",
    "rescore_organization",
    "run_import",
    "save_segment",
    "scoring_rules",
    "segment_conditions",
    "segment_customers",
    "segment_filters",
    "segment_members",
    "sender_query",
    "start_import",
    "timeline",
    "update_activity",
    "update_company",
    "update_crm_settings",
    "update_customer",
    "update_deal",
    "update_stage",
]
