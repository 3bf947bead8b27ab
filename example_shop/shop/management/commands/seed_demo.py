"""``manage.py seed_demo``: a believable Japanese catalogue and months of orders for the demo.

The orders come from a small generative model with real co-purchase structure (a shirt pulls
in a tie or a belt, a camera body a lens, an SD card and a bag, a coffee maker beans and
filters; popular products sell more), so the affinity engine has something true to find.
Everything is drawn from one ``random.Random(seed)`` in a fixed order, and the time base is
today's midnight, so one seed always gives the same orders.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from django_crosssell.models import (
    AffinityRun,
    BundleItem,
    BundleRule,
    ProductRelation,
    TierLadder,
    TierStep,
)
from example_shop.shop.followup_demo import seed_followup
from example_shop.shop.models import Category, Order, OrderDiscount, OrderLine, Product

DEMO_CUSTOMERS = 300
DEMO_CUSTOMER_PASSWORD = "demo"
CUSTOMER_NAME = re.compile(r"^customer\d{3}$")
DAYS = 180
BATCH = 2000

# --- catalogue -----------------------------------------------------------------------------
# (category slug, name) in display order.
CATEGORIES: list[tuple[str, str]] = [
    ("mens", "紳士服"),
    ("camera", "カメラ"),
    ("coffee", "コーヒー"),
    ("stationery", "文房具"),
    ("outdoor", "アウトドア"),
    ("kitchen", "キッチン"),
    ("tea", "お茶"),
]

# role -> (category slug, description, [(slug, name, price)]). A role is what the order
# model reasons about ("a camera body pulls in a lens"); products of a role are listed from
# the most to the least popular.
CATALOGUE: dict[str, tuple[str, str, list[tuple[str, str, int]]]] = {
    "shirt": (
        "mens",
        "ビジネスにも休日にも使える定番のシャツ。アイロンがけしやすく、洗濯にも強い生地です。",
        [
            ("shirt-cotton-white", "オックスフォードシャツ 綿 白", 4980),
            ("shirt-premium-white", "高級綿ブロードシャツ 白", 6980),
            ("shirt-cotton-blue", "オックスフォードシャツ 綿 サックスブルー", 4980),
            ("shirt-stripe-navy", "ロンドンストライプシャツ 紺", 5480),
            ("shirt-noniron-white", "形態安定シャツ 白", 3980),
            ("shirt-linen-white", "リネンシャツ 白", 7980),
            ("shirt-check-gingham", "ギンガムチェックシャツ", 5280),
            ("shirt-premium-blue", "高級綿ブロードシャツ サックスブルー", 6980),
        ],
    ),
    "tie": (
        "mens",
        "職人が一本ずつ仕立てたネクタイ。結び目がきれいに決まる厚みです。",
        [
            ("tie-silk-navy", "シルクネクタイ 無地 紺", 5800),
            ("tie-silk-wine", "シルクネクタイ 無地 ワイン", 5800),
            ("tie-regimental", "レジメンタルタイ 紺×緑", 4800),
            ("tie-knit-black", "ニットタイ 黒", 4200),
            ("tie-dot-navy", "小紋柄ネクタイ 紺", 5200),
            ("tie-silk-grey", "シルクネクタイ 無地 グレー", 5800),
            ("tie-old-paisley", "ペイズリータイ（旧柄）", 3900),
        ],
    ),
    "belt": (
        "mens",
        "イタリア産牛革を使ったベルト。スーツにもチノパンにも合わせやすい幅です。",
        [
            ("belt-leather-black", "本革ベルト 黒", 6800),
            ("belt-leather-brown", "本革ベルト ダークブラウン", 6800),
            ("belt-mesh", "メッシュベルト", 5400),
            ("belt-reversible", "リバーシブルベルト 黒/茶", 7800),
        ],
    ),
    "cufflinks": (
        "mens",
        "ダブルカフスのシャツを格上げするカフリンクス。ギフトボックス入り。",
        [
            ("cufflinks-silver", "シルバーカフリンクス", 8800),
            ("cufflinks-onyx", "オニキスカフリンクス", 12000),
            ("cufflinks-knot", "シルクノットカフス", 1800),
        ],
    ),
    "socks": (
        "mens",
        "毎日使う小物こそ良いものを。綿混で蒸れにくい素材です。",
        [
            ("socks-business-3p", "ビジネスソックス 3足組", 2400),
            ("handkerchief-cotton", "綿ハンカチ 白", 1200),
        ],
    ),
    "camera_body": (
        "camera",
        "小型軽量のミラーレス一眼。瞳AFで人物もペットもくっきり撮れます。",
        [
            ("camera-basic", "ミラーレス一眼 ベーシック", 59800),
            ("camera-standard", "ミラーレス一眼 スタンダード", 84800),
            ("camera-pro", "ミラーレス一眼 プロ", 119800),
            ("camera-compact", "高級コンパクトカメラ", 69800),
            ("camera-old", "ミラーレス一眼 旧モデル", 49800),
        ],
    ),
    "lens": (
        "camera",
        "当店のミラーレス一眼に対応する交換レンズ。手ぶれ補正と静かなAFが特長です。",
        [
            ("lens-kit-zoom", "標準ズームレンズ 18-55mm", 29800),
            ("lens-50mm-f18", "単焦点レンズ 50mm F1.8", 24800),
            ("lens-tele-zoom", "望遠ズームレンズ 70-300mm", 54800),
            ("lens-wide", "広角ズームレンズ 10-20mm", 48000),
            ("lens-macro", "マクロレンズ 60mm", 39800),
            ("lens-35mm-f14", "単焦点レンズ 35mm F1.4", 79800),
        ],
    ),
    "camera_bag": (
        "camera",
        "クッション性の高い仕切りで、ボディとレンズをしっかり守ります。",
        [
            ("bag-shoulder", "カメラショルダーバッグ", 8900),
            ("bag-backpack", "カメラリュック", 14800),
            ("bag-inner", "カメラインナーケース", 3200),
        ],
    ),
    "sd_card": (
        "camera",
        "4K動画の連続記録にも対応する高速SDカード。",
        [
            ("sd-64gb", "SDカード 64GB", 2280),
            ("sd-128gb", "SDカード 128GB", 3980),
            ("sd-32gb", "SDカード 32GB", 1480),
            ("sd-256gb", "SDカード 256GB UHS-II", 9800),
        ],
    ),
    "tripod": (
        "camera",
        "夜景や星空の撮影に欠かせない三脚。",
        [
            ("tripod-travel", "トラベル三脚", 12800),
            ("tripod-mini", "ミニ三脚", 2980),
            ("tripod-carbon", "カーボン三脚 プロ", 38000),
        ],
    ),
    "camera_acc": (
        "camera",
        "撮影をもっと快適にするアクセサリー。",
        [
            ("battery-spare", "予備バッテリー", 6800),
            ("cleaning-kit", "レンズクリーニングキット", 1980),
            ("filter-protect-58", "レンズ保護フィルター 58mm", 3480),
        ],
    ),
    "coffee_maker": (
        "coffee",
        "毎朝の一杯をおいしく淹れるコーヒー器具。",
        [
            ("coffeemaker-entry", "コーヒーメーカー エントリー", 5990),
            ("coffeemaker-standard", "コーヒーメーカー スタンダード", 8980),
            ("coffeemaker-auto", "全自動コーヒーメーカー ミル付き", 12800),
            ("dripper-set", "ハンドドリップ スターターセット", 3980),
            ("espresso-machine", "エスプレッソマシン", 29800),
        ],
    ),
    "beans": (
        "coffee",
        "ご注文を受けてから焙煎する自家焙煎のコーヒー豆。豆のままお届けします。",
        [
            ("beans-house-blend", "ハウスブレンド 200g", 1280),
            ("beans-colombia", "コロンビア スプレモ 200g", 1480),
            ("beans-brazil", "ブラジル サントス 200g", 1380),
            ("beans-ethiopia", "エチオピア イルガチェフェ 200g", 1680),
            ("beans-guatemala", "グアテマラ アンティグア 200g", 1580),
            ("beans-mandheling", "マンデリン 200g", 1580),
            ("beans-espresso", "エスプレッソ ロースト 200g", 1380),
            ("beans-decaf", "デカフェ ブレンド 200g", 1480),
            ("beans-geisha", "パナマ ゲイシャ 100g", 3800),
        ],
    ),
    "filter": (
        "coffee",
        "雑味を抑えてすっきり淹れられるフィルター。",
        [
            ("filter-paper-100", "ペーパーフィルター 100枚", 380),
            ("filter-paper-unbleached", "無漂白ペーパーフィルター 100枚", 420),
            ("filter-metal", "ステンレスフィルター", 2480),
            ("filter-paper-old", "ペーパーフィルター 旧パッケージ", 350),
        ],
    ),
    "mill": (
        "coffee",
        "挽きたての香りを楽しめるコーヒーミル。粒度は細挽きから粗挽きまで調整できます。",
        [
            ("mill-hand", "手挽きコーヒーミル", 4980),
            ("mill-electric", "電動コーヒーミル", 7980),
            ("mill-ceramic", "セラミック刃コーヒーミル", 3480),
        ],
    ),
    "mug": (
        "coffee",
        "毎日使いたくなる手なじみの良いカップ。食洗機対応。",
        [
            ("mug-white", "白磁マグカップ", 1800),
            ("mug-hasami-indigo", "波佐見焼マグカップ 藍", 2400),
            ("mug-vacuum", "真空断熱マグ", 2980),
            ("mug-glass-pair", "耐熱ガラスカップ 2個組", 1980),
        ],
    ),
    "kettle": (
        "coffee",
        "細く安定したお湯を注げる、ハンドドリップ向けのケトル。",
        [
            ("kettle-drip", "ドリップケトル 1.0L", 4480),
            ("kettle-electric", "温度調節電気ケトル", 9800),
        ],
    ),
    "pen": (
        "stationery",
        "なめらかな書き味の筆記具。毎日の記録や手紙に。",
        [
            ("pen-fountain-entry", "万年筆 エントリー 細字", 3300),
            ("pen-gel-5", "ゲルインクボールペン 0.5mm 5本", 880),
            ("pen-ballpoint", "油性ボールペン 0.7mm", 1100),
            ("pen-fountain-gold", "万年筆 14金ペン 中字", 16500),
        ],
    ),
    "ink": (
        "stationery",
        "万年筆用のインク。にじみにくく、乾きの早い処方です。",
        [
            ("ink-bottle-blueblack", "ボトルインク ブルーブラック", 1320),
            ("ink-cartridge-black", "カートリッジインク 黒 12本", 660),
            ("ink-bottle-sepia", "ボトルインク セピア", 1320),
            ("ink-sakura", "限定インク 桜", 2200),
        ],
    ),
    "notebook": (
        "stationery",
        "万年筆でも裏抜けしにくい国産紙を使ったノート。",
        [
            ("notebook-a5-dot", "A5ノート ドット方眼", 880),
            ("notebook-a5-grid", "A5ノート 方眼", 880),
            ("memo-pad-5", "メモパッド 5冊", 550),
            ("diary-b6", "B6 手帳", 2200),
            ("notebook-cover-leather", "革カバー A5", 6800),
        ],
    ),
    "pencil": (
        "stationery",
        "勉強にも仕事にも使える定番の筆記具と小物。",
        [
            ("pencil-hb-12", "鉛筆 HB 12本", 720),
            ("eraser-3", "消しゴム 3個", 330),
            ("pencil-mechanical", "シャープペンシル 0.5mm", 1650),
            ("pencil-sharpener", "鉛筆削り", 990),
        ],
    ),
    "tent": (
        "outdoor",
        "設営が簡単で風に強いテント。初めてのキャンプにも安心です。",
        [
            ("tent-2p", "ドームテント 2人用", 24800),
            ("tent-solo", "ソロテント 1人用", 16800),
            ("tent-family", "ファミリーテント 4人用", 49800),
        ],
    ),
    "sleeping_bag": (
        "outdoor",
        "コンパクトに収納できる寝袋。快適温度の目安を明記しています。",
        [
            ("sleepingbag-3season", "寝袋 3シーズン", 9800),
            ("sleepingbag-summer", "寝袋 夏用", 4980),
            ("sleepingbag-down", "ダウン寝袋 冬用", 32000),
        ],
    ),
    "mat": (
        "outdoor",
        "地面の冷えと凹凸から体を守るマット。",
        [
            ("mat-inflatable", "インフレーターマット", 7800),
            ("mat-foam", "折りたたみクローズドセルマット", 4200),
        ],
    ),
    "lantern": (
        "outdoor",
        "サイトを明るく照らすランタン。",
        [
            ("lantern-led", "LEDランタン", 4980),
            ("lantern-gas", "ガスランタン", 8800),
        ],
    ),
    "stove": (
        "outdoor",
        "屋外で手軽に調理できるバーナー。",
        [
            ("stove-single", "シングルバーナー", 6980),
            ("stove-double", "ツーバーナー", 19800),
        ],
    ),
    "gas": (
        "outdoor",
        "バーナーやランタン用の燃料。",
        [
            ("gas-od-250", "OD缶 250g", 680),
            ("gas-cb-3", "CB缶 3本組", 580),
        ],
    ),
    "chair": (
        "outdoor",
        "軽くて座り心地の良いキャンプ家具。",
        [
            ("chair-compact", "コンパクトチェア", 8800),
            ("table-roll", "ロールテーブル", 9800),
            ("chair-relax", "リラックスチェア", 12800),
        ],
    ),
    "knife": (
        "kitchen",
        "関の刃物職人が仕上げた包丁。切れ味が長持ちします。",
        [
            ("knife-santoku", "三徳包丁 165mm", 6800),
            ("knife-petty", "ペティナイフ 120mm", 5200),
            ("knife-gyuto", "牛刀 210mm", 12800),
            ("knife-damascus", "ダマスカス 三徳包丁", 24800),
        ],
    ),
    "board": (
        "kitchen",
        "包丁の刃あたりがやさしいまな板。",
        [
            ("board-hinoki", "ひのきまな板", 4400),
            ("board-antibacterial", "抗菌まな板", 2200),
        ],
    ),
    "whetstone": (
        "kitchen",
        "ご家庭で包丁の切れ味を取り戻せる砥石。",
        [
            ("whetstone-1000", "砥石 #1000", 3300),
            ("whetstone-combo", "両面砥石 #1000/#3000", 4980),
        ],
    ),
    "pan": (
        "kitchen",
        "毎日の料理に使いやすい調理器具。",
        [
            ("pan-nonstick-28", "ふっ素加工フライパン 28cm", 3980),
            ("pan-iron-26", "鉄フライパン 26cm", 5980),
            ("pan-tamagoyaki", "玉子焼き器", 2980),
            ("pot-yukihira", "雪平鍋 18cm", 3480),
        ],
    ),
    "utensil": (
        "kitchen",
        "台所仕事を快適にする道具。",
        [
            ("turner-steel", "ステンレスターナー", 1280),
            ("tongs", "キッチントング", 980),
            ("apron-linen", "リネンエプロン", 4800),
        ],
    ),
    "teapot": (
        "tea",
        "茶葉がよく開き、最後の一滴までおいしく注げる急須。",
        [
            ("teapot-tokoname", "常滑焼 急須", 5800),
            ("teapot-glass", "耐熱ガラス ティーポット", 2980),
        ],
    ),
    "tea": (
        "tea",
        "茶園から直接仕入れた新鮮な日本茶。",
        [
            ("tea-sencha", "静岡 深蒸し煎茶 100g", 1080),
            ("tea-hojicha", "ほうじ茶 100g", 864),
            ("tea-genmaicha", "玄米茶 200g", 756),
            ("tea-matcha", "抹茶 30g", 1620),
            ("tea-gyokuro", "八女 玉露 50g", 2160),
        ],
    ),
    "teacup": (
        "tea",
        "手に持ったときの温かみが心地よい湯呑み。",
        [
            ("teacup-pair", "湯呑み ペア", 3200),
            ("teacup-mino", "美濃焼 湯呑み", 1540),
        ],
    ),
    "tea_acc": (
        "tea",
        "お茶の時間を豊かにする道具。",
        [
            ("chasen", "茶筅 百本立", 3300),
            ("tea-caddy", "茶筒", 2800),
        ],
    ),
}

INACTIVE = {"tie-old-paisley", "camera-old", "filter-paper-old"}
OUT_OF_STOCK = {"tripod-carbon", "beans-geisha", "ink-sakura"}

# --- order model ---------------------------------------------------------------------------
# How often an order starts from each role (its "reason to visit").
ANCHOR_WEIGHTS: dict[str, float] = {
    "shirt": 10, "tie": 4, "belt": 2, "cufflinks": 1, "socks": 2,
    "camera_body": 5, "lens": 3, "camera_bag": 1.5, "sd_card": 4, "tripod": 1.5,
    "camera_acc": 2, "coffee_maker": 5, "beans": 12, "filter": 4, "mill": 2, "mug": 4,
    "kettle": 1.5, "pen": 3, "ink": 3, "notebook": 6, "pencil": 3, "tent": 2,
    "sleeping_bag": 1.5, "mat": 1, "lantern": 1.5, "stove": 1.5, "gas": 1, "chair": 1.5,
    "knife": 3, "board": 2, "whetstone": 1, "pan": 3, "utensil": 1.5, "teapot": 2, "tea": 5,
    "teacup": 2, "tea_acc": 1,
}  # fmt: skip

# role -> [(complementary role, probability that an order with the role also has one)].
COMPLEMENTS: dict[str, list[tuple[str, float]]] = {
    "shirt": [("tie", 0.45), ("belt", 0.2), ("cufflinks", 0.1), ("socks", 0.12)],
    "tie": [("shirt", 0.3)],
    "belt": [("shirt", 0.2)],
    "cufflinks": [("shirt", 0.4)],
    "camera_body": [
        ("lens", 0.55),
        ("sd_card", 0.6),
        ("camera_bag", 0.35),
        ("tripod", 0.15),
        ("camera_acc", 0.3),
    ],
    "lens": [("camera_acc", 0.25), ("camera_bag", 0.15)],
    "tripod": [("camera_acc", 0.1)],
    "coffee_maker": [("beans", 0.65), ("filter", 0.55), ("mug", 0.2), ("mill", 0.15)],
    "beans": [("beans", 0.25), ("filter", 0.25), ("mug", 0.08)],
    "mill": [("beans", 0.6)],
    "kettle": [("beans", 0.3), ("filter", 0.3)],
    "pen": [("ink", 0.6), ("notebook", 0.35)],
    "notebook": [("pen", 0.2), ("pencil", 0.2)],
    "tent": [("sleeping_bag", 0.55), ("mat", 0.4), ("lantern", 0.3), ("chair", 0.2)],
    "sleeping_bag": [("mat", 0.35)],
    "stove": [("gas", 0.7)],
    "lantern": [("gas", 0.2)],
    "knife": [("board", 0.45), ("whetstone", 0.35)],
    "pan": [("utensil", 0.4)],
    "teapot": [("tea", 0.7), ("teacup", 0.35)],
    "tea": [("tea", 0.3), ("teacup", 0.08)],
}
# Consumables are bought several at a time.
MULTI_UNIT_ROLES = {"beans", "sd_card", "filter", "ink", "gas", "tea", "pencil", "socks"}
# Products of a complementary role that match the anchor's position ("the navy tie for the
# white shirt") are picked this often, which gives product-level (not only role-level) pairs.
MATCHED_PARTNER_PROBABILITY = 0.5
MAX_LINES = 6
# At most this share of the orders belongs to the demo customers (their own histories, see
# customer_slots()); guests place the rest.
CUSTOMER_SHARE = 0.6
CANCELLED_SHARE = 0.02

# --- merchandising -------------------------------------------------------------------------
LADDERS: list[dict[str, Any]] = [
    {
        "slug": "mirrorless-camera",
        "name": "ミラーレス一眼",
        "description": "ボディのグレード。上位モデルほど連写・AF・防塵防滴が強化されます。",
        "steps": [
            (
                "camera-basic",
                "ベーシック",
                "初めての一眼に。軽くて操作が簡単、スマホから一歩進んだ写真が撮れます。",
            ),
            (
                "camera-standard",
                "スタンダード",
                "ボディ内手ぶれ補正と高速AFを搭載。動く子どもやペットも、夕暮れの室内も失敗しにくくなります。",
            ),
            (
                "camera-pro",
                "プロ",
                "防塵防滴のマグネシウムボディと秒間20コマ連写。スポーツや野鳥、仕事の撮影まで任せられます。",
            ),
        ],
    },
    {
        "slug": "coffee-maker",
        "name": "コーヒーメーカー",
        "description": "抽出の仕組みのグレード。",
        "steps": [
            (
                "coffeemaker-entry",
                "エントリー",
                "ボタンひとつで5杯分。まずは手軽に家でドリップコーヒーを。",
            ),
            (
                "coffeemaker-standard",
                "スタンダード",
                "蒸らし機能と保温ポットで、時間がたっても香りと温度が落ちません。",
            ),
            (
                "coffeemaker-auto",
                "全自動",
                "ミル内蔵で豆から挽きたて。毎朝の豆を挽く手間がなくなり、香りは段違いです。",
            ),
        ],
    },
    {
        "slug": "white-dress-shirt",
        "name": "白シャツ",
        "description": "生地のグレード。",
        "steps": [
            (
                "shirt-cotton-white",
                "綿",
                "丈夫なオックスフォード生地で、毎日の着用と洗濯に強い一枚。",
            ),
            (
                "shirt-premium-white",
                "高級綿",
                "細番手の超長綿ブロード。なめらかな肌ざわりと上品な光沢で、スーツ姿がひときわ引き立ちます。",
            ),
        ],
    },
]

RELATIONS: list[tuple[str, str, str]] = [
    ("camera-basic", "lens-kit-zoom", ProductRelation.Kind.CROSS_SELL),
    ("camera-basic", "sd-64gb", ProductRelation.Kind.CROSS_SELL),
    ("camera-standard", "lens-50mm-f18", ProductRelation.Kind.CROSS_SELL),
    ("coffeemaker-entry", "filter-paper-100", ProductRelation.Kind.CROSS_SELL),
    ("coffeemaker-standard", "beans-house-blend", ProductRelation.Kind.CROSS_SELL),
    ("shirt-cotton-white", "tie-silk-navy", ProductRelation.Kind.CROSS_SELL),
    ("pen-fountain-entry", "ink-bottle-blueblack", ProductRelation.Kind.CROSS_SELL),
    ("tent-2p", "sleepingbag-3season", ProductRelation.Kind.CROSS_SELL),
    ("stove-single", "gas-od-250", ProductRelation.Kind.CROSS_SELL),
    ("knife-santoku", "board-hinoki", ProductRelation.Kind.CROSS_SELL),
    ("teapot-tokoname", "tea-sencha", ProductRelation.Kind.CROSS_SELL),
    ("beans-ethiopia", "beans-guatemala", ProductRelation.Kind.RELATED),
    ("beans-colombia", "beans-brazil", ProductRelation.Kind.RELATED),
    ("tie-silk-navy", "tie-silk-wine", ProductRelation.Kind.RELATED),
    ("lens-50mm-f18", "lens-35mm-f14", ProductRelation.Kind.RELATED),
    ("notebook-a5-dot", "notebook-a5-grid", ProductRelation.Kind.RELATED),
]

BUNDLES: list[dict[str, Any]] = [
    {
        "slug": "shirt-and-tie-set",
        "name": "シャツとネクタイのセットで10%引き",
        "kind": BundleRule.Kind.FIXED_SET,
        "value": Decimal("10"),
        "min_quantity": None,
        "pitch": "白のオックスフォードシャツと紺のシルクネクタイを一緒に買うと、セットで10%引き。",
        "items": [("shirt-cotton-white", 1), ("tie-silk-navy", 1)],
    },
    {
        "slug": "coffee-beans-mix",
        "name": "対象コーヒー豆 2つ以上で10%引き",
        "kind": BundleRule.Kind.MIX_AND_MATCH,
        "value": Decimal("10"),
        "min_quantity": 2,
        "pitch": "お好きな豆を組み合わせて2袋以上で10%引き。飲み比べにどうぞ。",
        "items": [
            (slug, 1) for slug, _name, _price in CATALOGUE["beans"][2] if slug not in OUT_OF_STOCK
        ],
    },
    {
        "slug": "sd-card-3",
        "name": "SDカード 3個まとめ買いで15%お得",
        "kind": BundleRule.Kind.MULTI_BUY,
        "value": Decimal("15"),
        "min_quantity": 3,
        "pitch": "同じSDカードを3個まとめて買うと15%お得。予備やバックアップ用に。",
        "items": [(slug, 1) for slug, _name, _price in CATALOGUE["sd_card"][2]],
    },
]


def clear_shop_data() -> dict[str, int]:
    """Delete the shop's catalogue, orders, merchandising and demo customers.

    Children go first so each ``delete()`` is a plain bulk DELETE instead of a cascade walk
    over tens of thousands of orders. Staff and other users are kept.
    """
    deleted = {
        "order discounts": OrderDiscount.objects.all().delete()[0],
        "order lines": OrderLine.objects.all().delete()[0],
        "orders": Order.objects.all().delete()[0],
    }
    AffinityRun.objects.all().delete()
    for model in (ProductRelation, TierStep, TierLadder, BundleItem, BundleRule):
        model.objects.all().delete()
    deleted["products"] = Product.objects.all().delete()[0]
    deleted["categories"] = Category.objects.all().delete()[0]
    user_model = get_user_model()
    demo_users = user_model.objects.filter(
        username__regex=CUSTOMER_NAME.pattern, is_staff=False, is_superuser=False
    )
    deleted["customers"] = demo_users.delete()[0]
    return deleted


@dataclass
class _Role:
    name: str
    products: list[Product]
    cum_weights: list[float]


def _zipf_cum_weights(n: int, exponent: float = 1.0) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank + 1) ** exponent for rank in range(n)))


def _pick(rng: random.Random, cum_weights: list[float]) -> int:
    return bisect.bisect_right(cum_weights, rng.random() * cum_weights[-1])


def customer_slots(
    rng: random.Random, customers: list[Any], span: int, budget: int
) -> list[tuple[int, Any]]:
    """``(offset in seconds, customer)`` of at most ``budget`` customer orders, in random order.

    Each customer gets a history a real shop would recognise: a kind (one-off buyer,
    occasional, regular, loyal) sets how many orders they place in the period, their first
    order falls anywhere in it, their own pace spaces the next ones (with jitter), and some
    stop buying (churn), so recency, frequency and the segments built from them spread out
    instead of one customer owning hundreds of orders. Guests place the remaining orders.
    """
    slots: list[tuple[int, Any]] = []
    for customer in customers:
        kind = rng.random()
        if kind < 0.35:
            wanted = 1
        elif kind < 0.70:
            wanted = rng.randint(2, 4)
        elif kind < 0.90:
            wanted = rng.randint(5, 10)
        else:
            wanted = rng.randint(11, 24)
        first = rng.randrange(span if wanted == 1 else max(1, span // 2))
        pace = (span - first) / wanted
        churn_after = rng.randint(1, wanted) if rng.random() < 0.25 else wanted
        offset = first
        for _ in range(churn_after):
            if offset >= span:
                break
            slots.append((offset, customer))
            offset += max(3600, int(pace * rng.uniform(0.5, 1.5)))
    rng.shuffle(slots)
    return slots[:budget]


class Command(BaseCommand):
    help = "Fill the example shop with a Japanese demo catalogue, merchandising and orders."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orders", type=int, default=20000, help="orders to generate")
        parser.add_argument("--seed", type=int, default=42, help="random seed")
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when products already exist"
        )
        parser.add_argument("--clear", action="store_true", help="delete the shop's data first")

    def handle(self, *args: Any, **options: Any) -> None:
        orders = options["orders"]
        if orders < 0:
            raise CommandError("--orders must be 0 or more.")
        started = time.perf_counter()
        if options["clear"]:
            deleted = clear_shop_data()
            self.stdout.write(
                "Cleared: " + ", ".join(f"{count} {name}" for name, count in deleted.items())
            )
        elif Product.objects.exists():
            if options["if_empty"]:
                self.stdout.write("The shop already has products; nothing to do (--if-empty).")
                return
            raise CommandError(
                "The shop already has products. Use --clear to replace them "
                "or --if-empty to keep them."
            )
        with transaction.atomic():
            products = self._catalogue()
            ladders, relations, bundles = self._merchandising(products)
            customers = self._customers()
            order_count, line_count = self._orders(
                products, customers, orders, random.Random(options["seed"])
            )
            seed_followup(products)  # follow-up flows and replenishment profiles
        elapsed = time.perf_counter() - started
        active = sum(1 for product in products.values() if product.is_active)
        sold_out = sum(1 for product in products.values() if product.stock == 0)
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {len(CATEGORIES)} categories, {len(products)} products "
                f"({active} active, {sold_out} out of stock), {ladders} tier ladders, "
                f"{relations} product relations, {bundles} bundle rules, "
                f"{len(customers)} demo customers, {order_count} orders with {line_count} "
                f"lines (seed {options['seed']}) in {elapsed:.1f} s."
            )
        )
        self.stdout.write(
            f"Demo customers log in as customer001..customer{DEMO_CUSTOMERS:03d} "
            f"with the password '{DEMO_CUSTOMER_PASSWORD}'."
        )

    # --- catalogue ---------------------------------------------------------------------------

    def _catalogue(self) -> dict[str, Product]:
        categories = Category.objects.bulk_create(
            Category(slug=slug, name=name, position=position)
            for position, (slug, name) in enumerate(CATEGORIES, start=1)
        )
        by_slug = {category.slug: category for category in categories}
        # Stock levels are part of the catalogue, not of the order seed.
        stock_rng = random.Random("catalogue-stock")
        products = []
        for _role, (category_slug, description, items) in CATALOGUE.items():
            for slug, name, price in items:
                stock = 0 if slug in OUT_OF_STOCK else stock_rng.randint(5, 120)
                products.append(
                    Product(
                        slug=slug,
                        name=name,
                        category=by_slug[category_slug],
                        price=price,
                        stock=stock,
                        is_active=slug not in INACTIVE,
                        description=description,
                    )
                )
        Product.objects.bulk_create(products)
        # bulk_create sets pks on SQLite >= 3.35 and PostgreSQL; re-read to be backend-proof.
        return {product.slug: product for product in Product.objects.all()}

    def _merchandising(self, products: dict[str, Product]) -> tuple[int, int, int]:
        for spec in LADDERS:
            ladder = TierLadder.objects.create(
                slug=spec["slug"], name=spec["name"], description=spec["description"]
            )
            TierStep.objects.bulk_create(
                TierStep(ladder=ladder, product=products[slug], rank=rank, label=label, pitch=pitch)
                for rank, (slug, label, pitch) in enumerate(spec["steps"], start=1)
            )
        ProductRelation.objects.bulk_create(
            ProductRelation(
                source=products[source], target=products[target], kind=kind, position=position
            )
            for position, (source, target, kind) in enumerate(RELATIONS)
        )
        for priority, spec in enumerate(reversed(BUNDLES)):
            rule = BundleRule.objects.create(
                slug=spec["slug"],
                name=spec["name"],
                kind=spec["kind"],
                discount_type=BundleRule.DiscountType.PERCENT,
                value=spec["value"],
                min_quantity=spec["min_quantity"],
                priority=priority,
                pitch=spec["pitch"],
            )
            BundleItem.objects.bulk_create(
                BundleItem(rule=rule, product=products[slug], quantity=quantity)
                for slug, quantity in spec["items"]
            )
        return len(LADDERS), len(RELATIONS), len(BUNDLES)

    def _customers(self) -> list[Any]:
        user_model = get_user_model()
        names = [f"customer{number:03d}" for number in range(1, DEMO_CUSTOMERS + 1)]
        existing = set(
            user_model.objects.filter(username__in=names).values_list("username", flat=True)
        )
        # One hash for all: hashing 300 passwords one by one would take most of a minute.
        password = make_password(DEMO_CUSTOMER_PASSWORD)
        user_model.objects.bulk_create(
            user_model(username=name, password=password, email=f"{name}@example.com")
            for name in names
            if name not in existing
        )
        by_name = {user.username: user for user in user_model.objects.filter(username__in=names)}
        return [by_name[name] for name in names]

    # --- orders ------------------------------------------------------------------------------

    def _orders(
        self,
        products: dict[str, Product],
        customers: list[Any],
        count: int,
        rng: random.Random,
    ) -> tuple[int, int]:
        roles: dict[str, _Role] = {}
        for role, (_category, _description, items) in CATALOGUE.items():
            role_products = [products[slug] for slug, _name, _price in items]
            roles[role] = _Role(role, role_products, _zipf_cum_weights(len(role_products)))
        anchor_names = list(ANCHOR_WEIGHTS)
        anchor_cum = list(itertools.accumulate(ANCHOR_WEIGHTS[name] for name in anchor_names))
        now = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
        span = DAYS * 24 * 60 * 60

        slots = customer_slots(rng, customers, span, round(count * CUSTOMER_SHARE))
        baskets = [
            self._basket(
                rng,
                roles,
                anchor_names,
                anchor_cum,
                slots[index] if index < len(slots) else None,
                span,
            )
            for index in range(count)
        ]
        baskets.sort(key=lambda basket: basket[0])  # stable: equal seconds keep draw order

        order_count = line_count = 0
        for start in range(0, len(baskets), BATCH):
            chunk = baskets[start : start + BATCH]
            orders = [
                Order(
                    customer=customer,
                    status=status,
                    placed_at=now - timedelta(seconds=span - offset),
                    subtotal=sum(product.price * quantity for product, quantity in lines),
                    discount=0,
                    total=sum(product.price * quantity for product, quantity in lines),
                )
                for offset, customer, status, lines in chunk
            ]
            Order.objects.bulk_create(orders)
            if orders and orders[0].pk is None:  # pragma: no cover - backends without RETURNING
                raise CommandError("This database backend does not return bulk-created keys.")
            order_lines = [
                OrderLine(
                    order=order,
                    product=product,
                    product_name=product.name,
                    quantity=quantity,
                    unit_price=product.price,
                )
                for order, (_offset, _customer, _status, lines) in zip(orders, chunk, strict=True)
                for product, quantity in lines
            ]
            OrderLine.objects.bulk_create(order_lines, batch_size=BATCH)
            order_count += len(orders)
            line_count += len(order_lines)
        return order_count, line_count

    def _basket(
        self,
        rng: random.Random,
        roles: dict[str, _Role],
        anchor_names: list[str],
        anchor_cum: list[float],
        slot: tuple[int, Any] | None,
        span: int,
    ) -> tuple[int, Any, str, list[tuple[Product, int]]]:
        """Draw one order (a customer's when ``slot`` is given, else a guest's); the number
        and order of draws is fixed, so results are seedable."""
        offset, customer = slot if slot is not None else (rng.randrange(span), None)
        status = Order.Status.CANCELLED if rng.random() < CANCELLED_SHARE else Order.Status.PAID

        chosen: dict[int, tuple[Product, int]] = {}

        def add(role: _Role, index: int) -> None:
            product = role.products[index]
            if product.pk in chosen or len(chosen) >= MAX_LINES:
                return
            quantity = 1
            if role.name in MULTI_UNIT_ROLES:
                quantity = rng.choices((1, 2, 3), cum_weights=(0.65, 0.9, 1.0))[0]
            chosen[product.pk] = (product, quantity)

        anchor = roles[anchor_names[_pick(rng, anchor_cum)]]
        anchor_index = _pick(rng, anchor.cum_weights)
        add(anchor, anchor_index)
        for partner_name, probability in COMPLEMENTS.get(anchor.name, ()):
            if rng.random() >= probability:
                continue
            partner = roles[partner_name]
            if rng.random() < MATCHED_PARTNER_PROBABILITY and partner is not anchor:
                index = anchor_index % len(partner.products)
            else:
                index = _pick(rng, partner.cum_weights)
            add(partner, index)
        # Unrelated extras: what else people pick up while they are here.
        extras = rng.choices((0, 1, 2), cum_weights=(0.6, 0.88, 1.0))[0]
        for _ in range(extras):
            role = roles[anchor_names[_pick(rng, anchor_cum)]]
            add(role, _pick(rng, role.cum_weights))
        return offset, customer, status, list(chosen.values())
