# ruff: noqa: E501 - the EDMX documents keep SAP's own line layout
"""A strict local SAP Gateway with one OData v2 and one OData v4 service: EDMX
$metadata, $filter (eq/ne/gt/lt/ge/le joined by `and`), $select, $top, $skip,
$orderby, counts, next links, typed key predicates, SAP's error bodies, basic auth
and the sap-client parameter."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.tools.fakes.common import FakeBase, basic_user

USER = "PILOTHOUSE"
PASSWORD = "sap-pass-42"
V2_PATH = "/sap/opu/odata/sap/ZSALES_SRV"
V4_PATH = "/sap/opu/odata4/sap/zsales/srvd/sap/zsales/0001"
PAGE_LIMIT = 4

V2_METADATA = """<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx"
  xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"
  xmlns:sap="http://www.sap.com/Protocols/SAPData">
 <edmx:DataServices m:DataServiceVersion="2.0">
  <Schema Namespace="ZSALES_SRV" xml:lang="en" sap:schema-version="1"
    xmlns="http://schemas.microsoft.com/ado/2008/09/edm">
   <EntityType Name="SalesOrder" sap:content-version="1">
    <Key><PropertyRef Name="SalesOrderID"/></Key>
    <Property Name="SalesOrderID" Type="Edm.String" Nullable="false" MaxLength="10" sap:label="Sales Order"/>
    <Property Name="CustomerName" Type="Edm.String" MaxLength="80" sap:label="Customer"/>
    <Property Name="NetAmount" Type="Edm.Decimal" Precision="16" Scale="3" sap:label="Net Amount"/>
    <Property Name="Currency" Type="Edm.String" MaxLength="5" sap:label="Currency"/>
    <Property Name="Status" Type="Edm.String" MaxLength="10" sap:label="Status"/>
    <NavigationProperty Name="ToItems" Relationship="ZSALES_SRV.Assoc_Items" FromRole="FromRole" ToRole="ToRole"/>
   </EntityType>
   <EntityType Name="SalesOrderItem" sap:content-version="1">
    <Key><PropertyRef Name="SalesOrderID"/><PropertyRef Name="ItemPosition"/></Key>
    <Property Name="SalesOrderID" Type="Edm.String" Nullable="false" MaxLength="10" sap:label="Sales Order"/>
    <Property Name="ItemPosition" Type="Edm.String" Nullable="false" MaxLength="10" sap:label="Item"/>
    <Property Name="Product" Type="Edm.String" MaxLength="40" sap:label="Product"/>
    <Property Name="Quantity" Type="Edm.Int32" sap:label="Quantity"/>
   </EntityType>
   <EntityContainer Name="ZSALES_SRV_Entities" m:IsDefaultEntityContainer="true">
    <EntitySet Name="SalesOrderSet" EntityType="ZSALES_SRV.SalesOrder" sap:creatable="false"/>
    <EntitySet Name="SalesOrderItemSet" EntityType="ZSALES_SRV.SalesOrderItem"/>
   </EntityContainer>
  </Schema>
 </edmx:DataServices>
</edmx:Edmx>"""

V4_METADATA = """<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
 <edmx:Reference Uri="/sap/opu/odata/IWFND/CATALOGSERVICE;v=2/Vocabularies(TechnicalName='%2FIWBEP%2FVOC_COMMON',Version='0001',SAP__Origin='')/$value">
  <edmx:Include Namespace="com.sap.vocabularies.Common.v1" Alias="Common"/>
 </edmx:Reference>
 <edmx:DataServices>
  <Schema Namespace="com.sap.gateway.srvd.zsales.v0001" Alias="SAP__self"
    xmlns="http://docs.oasis-open.org/odata/ns/edm">
   <EntityType Name="SalesOrderType">
    <Key><PropertyRef Name="SalesOrder"/></Key>
    <Property Name="SalesOrder" Type="Edm.String" Nullable="false" MaxLength="10">
     <Annotation Term="Common.Label" String="Sales Order"/>
    </Property>
    <Property Name="SoldToParty" Type="Edm.String" MaxLength="10"/>
    <Property Name="TotalNetAmount" Type="Edm.Decimal" Precision="15" Scale="2"/>
    <Property Name="OverallStatus" Type="Edm.String" MaxLength="1"/>
    <Property Name="CreationDate" Type="Edm.Date"/>
   </EntityType>
   <EntityType Name="BusinessPartnerType">
    <Key><PropertyRef Name="PartnerUUID"/></Key>
    <Property Name="PartnerUUID" Type="Edm.Guid" Nullable="false"/>
    <Property Name="Name" Type="Edm.String" MaxLength="80"/>
   </EntityType>
   <EntityContainer Name="Container">
    <EntitySet Name="SalesOrder" EntityType="com.sap.gateway.srvd.zsales.v0001.SalesOrderType"/>
    <EntitySet Name="BusinessPartner" EntityType="SAP__self.BusinessPartnerType"/>
   </EntityContainer>
  </Schema>
 </edmx:DataServices>
</edmx:Edmx>"""

_COMPARE = re.compile(r"^\s*(\w+)\s+(eq|ne|gt|lt|ge|le)\s+('(?:[^']|'')*'|[-\d.]+[LMd]?)\s*$")


def _value(raw: str) -> Any:
    if raw.startswith("'"):
        return raw[1:-1].replace("''", "'")
    return float(raw.rstrip("LMd"))


class FakeSap(FakeBase):
    def __init__(self) -> None:
        super().__init__()
        statuses = ["OPEN", "OPEN", "COMPLETED", "OPEN", "BLOCKED", "OPEN", "COMPLETED"]
        self.v2_orders = [
            {
                "SalesOrderID": f"50000000{i}",
                "CustomerName": f"Customer {i}",
                "NetAmount": f"{i * 1000}.000",
                "Currency": "EUR",
                "Status": statuses[i - 1],
            }
            for i in range(1, 8)
        ]
        self.v2_items = [
            {
                "SalesOrderID": "500000001",
                "ItemPosition": "10",
                "Product": "HT-1000",
                "Quantity": 2,
            },
            {
                "SalesOrderID": "500000001",
                "ItemPosition": "20",
                "Product": "HT-1001",
                "Quantity": 1,
            },
        ]
        self.v4_orders = [
            {
                "SalesOrder": f"{i}",
                "SoldToParty": "17100001",
                "TotalNetAmount": i * 10.5,
                "OverallStatus": "A" if i % 2 else "C",
                "CreationDate": f"2026-11-0{i}",
            }
            for i in range(1, 6)
        ]
        self.v4_partners = [
            {"PartnerUUID": "0894ef45-7741-1eda-b4cb-3f9b2a4b8a6e", "Name": "O'Neil GmbH"}
        ]
        self.app = Starlette(
            routes=[
                Route(V2_PATH + "/{rest:path}", self.v2),
                Route(V4_PATH + "/{rest:path}", self.v4),
            ]
        )

    # --- plumbing -----------------------------------------------------------------

    def _gate(self, request: Request, version: int) -> Response | None:
        scripted = self.scripted(request)
        if scripted is not None:
            return scripted
        if basic_user(request) != (USER, PASSWORD):
            return Response("<html><body>Logon failed</body></html>", 401, media_type="text/html")
        if request.query_params.get("sap-client", "100") != "100":
            return self._error(version, 401, "/IWFND/CM_BEC/026", "Client does not exist")
        return None

    @staticmethod
    def _error(version: int, status: int, code: str, message: str) -> Response:
        if version == 2:
            body = {"error": {"code": code, "message": {"lang": "en", "value": message}}}
        else:
            body = {"error": {"code": code, "message": message}}
        return JSONResponse(body, status)

    def _filter(self, rows: list[dict[str, Any]], expression: str, version: int) -> Any:
        if not expression:
            return rows
        out = rows
        for clause in re.split(r"\s+and\s+", expression):
            match = _COMPARE.match(clause)
            if match is None or match.group(1) not in (rows[0] if rows else {}):
                return self._error(
                    version, 400, "/IWBEP/CM_MGW_RT/022", f"Invalid filter expression: '{clause}'"
                )
            prop, op, raw = match.groups()
            wanted = _value(raw)

            def keep(
                row: dict[str, Any], prop: str = prop, op: str = op, wanted: Any = wanted
            ) -> bool:
                actual: Any = row[prop]
                if isinstance(wanted, float):
                    actual = float(actual)
                return {
                    "eq": actual == wanted,
                    "ne": actual != wanted,
                    "gt": actual > wanted,
                    "lt": actual < wanted,
                    "ge": actual >= wanted,
                    "le": actual <= wanted,
                }[op]

            out = [r for r in out if keep(r)]
        return out

    def _collection(
        self, request: Request, rows: list[dict[str, Any]], name: str, version: int
    ) -> Response:
        q = request.query_params
        if (
            version == 2
            and q.get("$format") != "json"
            and "json" not in request.headers.get("accept", "")
        ):
            return Response("<feed/>", media_type="application/atom+xml")
        filtered = self._filter(rows, q.get("$filter", ""), version)
        if isinstance(filtered, Response):
            return filtered
        if q.get("$orderby"):
            prop, _, direction = q["$orderby"].partition(" ")
            filtered = sorted(filtered, key=lambda r: r[prop], reverse=direction == "desc")
        skip = int(q.get("$skip", 0))
        top = int(q.get("$top", PAGE_LIMIT))
        page_size = min(top, PAGE_LIMIT)
        page = filtered[skip : skip + page_size]
        more = skip + page_size < len(filtered) and page_size < top
        if q.get("$select"):
            keep = q["$select"].split(",")
            page = [{k: r[k] for k in keep} for r in page]
        if version == 2:
            results = [
                {
                    "__metadata": {"type": f"ZSALES_SRV.{name}"},
                    **r,
                    "ToItems": {"__deferred": {"uri": "..."}},
                }
                for r in page
            ]
            d: dict[str, Any] = {"results": results}
            if q.get("$inlinecount") == "allpages":
                d["__count"] = str(len(filtered))
            if more:
                d["__next"] = f"{request.url.path}?$skiptoken={skip + page_size}"
            return JSONResponse({"d": d})
        body: dict[str, Any] = {"@odata.context": f"$metadata#{name}", "value": page}
        if q.get("$count") == "true":
            body["@odata.count"] = len(filtered)
        if more:
            body["@odata.nextLink"] = f"{name}?$skiptoken={skip + page_size}"
        return JSONResponse(body)

    @staticmethod
    def _keys(predicate: str) -> dict[str, str] | str:
        predicate = unquote(predicate)
        if "=" not in predicate:
            return predicate
        return dict(part.split("=", 1) for part in predicate.split(","))

    # --- services -------------------------------------------------------------------

    async def v2(self, request: Request) -> Response:
        if denied := self._gate(request, 2):
            return denied
        rest = request.path_params["rest"]
        if rest == "$metadata":
            return Response(V2_METADATA, media_type="application/xml")
        sets = {
            "SalesOrderSet": ("SalesOrder", self.v2_orders),
            "SalesOrderItemSet": ("SalesOrderItem", self.v2_items),
        }
        match = re.fullmatch(r"(\w+)(?:\((.+)\))?", unquote(rest))
        if match is None or match.group(1) not in sets:
            return self._error(
                2, 404, "/IWBEP/CM_MGW_RT/021", f"Resource not found for segment '{rest}'"
            )
        name, rows = sets[match.group(1)]
        if match.group(2) is None:
            return self._collection(request, rows, name, 2)
        keys = self._keys(match.group(2))
        if isinstance(keys, str):
            keys = {"SalesOrderID": keys}
        if any(not (v.startswith("'") and v.endswith("'")) for v in keys.values()):
            return self._error(2, 400, "/IWBEP/CM_MGW_RT/004", "Invalid key predicate")
        wanted = {k: v[1:-1].replace("''", "'") for k, v in keys.items()}
        found = [r for r in rows if all(r.get(k) == v for k, v in wanted.items())]
        if not found:
            return self._error(
                2, 404, "/IWBEP/CM_MGW_RT/020", f"Resource not found for segment '{name}'"
            )
        return JSONResponse({"d": {"__metadata": {"type": f"ZSALES_SRV.{name}"}, **found[0]}})

    async def v4(self, request: Request) -> Response:
        if denied := self._gate(request, 4):
            return denied
        rest = request.path_params["rest"]
        if rest == "$metadata":
            return Response(V4_METADATA, media_type="application/xml")
        sets = {
            "SalesOrder": ("SalesOrder", self.v4_orders, "SalesOrder"),
            "BusinessPartner": ("BusinessPartner", self.v4_partners, "PartnerUUID"),
        }
        match = re.fullmatch(r"(\w+)(?:\((.+)\))?", unquote(rest))
        if match is None or match.group(1) not in sets:
            return self._error(
                4, 404, "/IWBEP/CX_MGW_TECH_EXCEPTION", f"Resource '{rest}' not found"
            )
        name, rows, key = sets[match.group(1)]
        if match.group(2) is None:
            return self._collection(request, rows, name, 4)
        raw = match.group(2)
        if key == "PartnerUUID":
            if raw.startswith("'") or raw.startswith("guid"):
                return self._error(4, 400, "/IWBEP/CX_MGW_BUSI_EXCEPTION", "Invalid GUID literal")
            value = raw
        else:
            if not (raw.startswith("'") and raw.endswith("'")):
                return self._error(4, 400, "/IWBEP/CX_MGW_BUSI_EXCEPTION", "Invalid key predicate")
            value = raw[1:-1].replace("''", "'")
        found = [r for r in rows if r[key] == value]
        if not found:
            return self._error(4, 404, "/IWBEP/CX_MGW_BUSI_EXCEPTION", f"No entity with key {raw}")
        return JSONResponse({"@odata.context": f"$metadata#{name}/$entity", **found[0]})
