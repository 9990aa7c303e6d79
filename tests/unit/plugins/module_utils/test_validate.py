"""The contract's value checks (_validate.py): what each accepts, normalises and refuses, without servers."""

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _validate as validate
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import ALL_TABLES
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

TENANT = "5b1f0c1e-0000-4000-8000-00000000c3e1"


@pytest.mark.parametrize("number", ["+40712345678", "+14155550100"])
def test_valid_e164(number):
    assert validate.validate_e164(number) == number


@pytest.mark.parametrize("number", ["0712345678", "+0712345678", "+40 712 345 678", "+4071234567890123", ""])
def test_invalid_e164_is_refused_with_an_example(number):
    with pytest.raises(CerniqError, match="not E.164"):
        validate.validate_e164(number)


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (200, 200), ("150", 150), (" 7 ", 7), (3.0, 3)])
def test_counts_accept_integers_and_integer_strings(value, expected):
    assert validate.validate_count(value, "value") == expected


@pytest.mark.parametrize("value", [-1, "-3", 1.5, "1.5", "ten", None, True, [], ""])
def test_counts_refuse_everything_else(value):
    with pytest.raises(CerniqError, match="value must be a non-negative integer"):
        validate.validate_count(value, "value")


def test_phone_ids_are_validated_deduplicated_and_sorted_as_people_count():
    assert validate.validate_phone_ids(["phone_10", "phone_02", "phone_100", "phone_02"]) == \
        ["phone_02", "phone_10", "phone_100"]
    assert validate.validate_phone_ids([]) is None
    with pytest.raises(CerniqError, match="phone_NN"):
        validate.validate_phone_ids(["07"])


def test_tenant_label_status_and_campaign_are_normalised():
    assert validate.validate_tenant(TENANT.upper()) == TENANT
    assert validate.validate_label("  Sales 21 ") == "Sales 21"
    assert validate.validate_phone_status("banned") == "BANNED"
    campaign = "019cad8f-ac00-7000-8000-019cad8fac00"
    assert validate.validate_campaign_id(campaign.upper()) == campaign


@pytest.mark.parametrize(("call", "message"), [
    (lambda: validate.validate_tenant("nope"), "tenant_id 'nope' is not a UUID"),
    (lambda: validate.validate_label("  "), "label must not be empty"),
    (lambda: validate.validate_phone_status("DELETED"), "is not one of ACTIVE, OFFLINE, BANNED"),
    (lambda: validate.validate_campaign_id("hot"), "'hot' is not an Instantly campaign id"),
    (lambda: validate.validate_account_id("a b", None), "empty or has spaces"),
    (lambda: validate.validate_account_id("40799999999@s.whatsapp.net", "+40712345021"),
     "belongs to \\+40799999999, not to \\+40712345021"),
])
def test_bad_values_are_refused_naming_them(call, message):
    with pytest.raises(CerniqError, match=message):
        call()


def test_an_account_id_that_is_not_a_jid_is_accepted_as_is():
    assert validate.validate_account_id("waba-1234567", "+40712345021") == "waba-1234567"


def test_tables_none_means_every_contract_table_and_duplicates_go():
    assert validate.validate_tables(None) == list(ALL_TABLES)
    assert validate.validate_tables(["gold_lead_journey", "wa_phone_numbers", "gold_lead_journey"]) == \
        ["gold_lead_journey", "wa_phone_numbers"]


def test_an_empty_table_list_is_refused_not_read_as_all():
    with pytest.raises(CerniqError, match="tables is empty: name at least one of wa_phone_numbers"):
        validate.validate_tables([])


def test_a_table_outside_the_contract_is_refused():
    with pytest.raises(CerniqError, match="'pg_authid' are not tables of the platform contract"):
        validate.validate_tables(["gold_lead_journey", "pg_authid"])
