"""Generate `gateway/data/seed_reviews.jsonl`, the project's own labelled seed reviews.

The seed set trains the zero-setup baseline model (`gateway.local.tfidf`). Every review is
written here, by this project: sentence cores per category (each with its urgency, topic and
summary), app domains that fill the slots, optional openers, context, details and closers, and
light noise (informal spelling, typos, lower case, missing punctuation, emoji). Nothing is
copied from any external data set.

Output is deterministic for a given `--seed`. Run from the repository root:

    python -m tools.seed_data.generate [--seed 20240611] [--per-category 85] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

# (text, urgency, topic, summary). Slots: {app} {feature} {action} {action_topic} {screen}
# {data} {purchase} {wish} {capability} {device} {version} {time} {n} {competitor} {purpose}
# {integration}. Topics are title-cased and cut to 4 words after filling.
Core = tuple[str, str, str, str]

URGENCIES = ("Critical", "High", "Medium", "Low")


@dataclass(frozen=True)
class Domain:
    kind: str
    purpose: str
    apps: tuple[str, ...]
    features: tuple[str, ...]
    actions: tuple[tuple[str, str], ...]  # (verb phrase, topic noun phrase)
    screens: tuple[str, ...]
    data: tuple[str, ...]
    purchases: tuple[str, ...]
    wishes: tuple[str, ...]
    capabilities: tuple[str, ...]
    cores: dict[str, tuple[Core, ...]] = field(default_factory=dict)


DOMAINS: tuple[Domain, ...] = (
    Domain(
        kind="banking",
        purpose="managing my money",
        apps=("PennyWise Bank", "Northgate Mobile", "CoinNest", "Ledgerly"),
        features=("transfers", "bill pay", "check deposit", "card freeze", "statements"),
        actions=(
            ("send money", "Money Transfer"),
            ("deposit a check", "Check Deposit"),
            ("pay a bill", "Bill Pay"),
            ("transfer to savings", "Savings Transfer"),
            ("view my balance", "Balance View"),
        ),
        screens=("login screen", "transfer page", "account summary", "payment screen"),
        data=("transaction history", "saved payees", "budget categories"),
        purchases=("transfer", "bill payment", "wire"),
        wishes=(
            "spending categories",
            "joint account support",
            "instant transfers",
            "a savings goal tracker",
            "virtual card numbers",
        ),
        capabilities=(
            "split a payment with a friend",
            "schedule recurring transfers",
            "export statements as csv",
            "lock my card from the home screen",
        ),
        cores={
            "Bug Report": (
                (
                    "my balance shows $0 even though there is money in the account",
                    "Critical",
                    "Wrong Balance",
                    "User says the app shows a zero balance despite funds in the account.",
                ),
                (
                    "the transfer says completed but the money never arrived",
                    "Critical",
                    "Missing Transfer",
                    "User reports a completed transfer whose money never arrived.",
                ),
                (
                    "mobile check deposit keeps rejecting my check saying the image is blurry "
                    "when it's perfectly clear",
                    "High",
                    "Check Deposit Rejected",
                    "User says check deposit wrongly rejects clear check images.",
                ),
            ),
            "Complaint": (
                (
                    "the overdraft fees are outrageous and the app hides them",
                    "Medium",
                    "Overdraft Fees",
                    "User complains about high, poorly disclosed overdraft fees.",
                ),
                (
                    "they closed my branch and now the app is the only option and it's barely "
                    "usable",
                    "Medium",
                    "Forced Mobile Banking",
                    "User is unhappy that the app is now the only way to bank.",
                ),
            ),
            "Praise": (
                (
                    "depositing checks takes like 10 seconds now, so convenient",
                    "Low",
                    "Fast Check Deposit",
                    "User praises how quick check deposit is.",
                ),
            ),
            "Question": (
                (
                    "is it safe to link my other bank accounts here?",
                    "Medium",
                    "Account Linking Safety",
                    "User asks whether linking external bank accounts is safe.",
                ),
                (
                    "how long does a transfer to another bank usually take",
                    "Low",
                    "Transfer Timing",
                    "User asks how long external transfers take.",
                ),
            ),
        },
    ),
    Domain(
        kind="shopping",
        purpose="online shopping",
        apps=("Cartwheel", "ShopSprout", "DealDash Market", "Bazaarly"),
        features=("checkout", "wishlist", "order tracking", "search filters", "coupons"),
        actions=(
            ("check out", "Checkout"),
            ("apply a coupon", "Coupon Code"),
            ("track my order", "Order Tracking"),
            ("add items to my cart", "Add To Cart"),
            ("start a return", "Returns"),
        ),
        screens=("checkout page", "cart", "product page", "order history"),
        data=("cart", "wishlist", "order history", "saved addresses"),
        purchases=("order", "gift card", "membership"),
        wishes=(
            "price drop alerts",
            "a size guide",
            "a compare products button",
            "more payment options",
            "gift wrapping at checkout",
        ),
        capabilities=(
            "save items for later",
            "filter by rating",
            "split an order into two deliveries",
            "see the full price before checkout",
        ),
        cores={
            "Bug Report": (
                (
                    "the coupon code gets rejected at checkout even though it's valid",
                    "Medium",
                    "Coupon Rejected",
                    "User reports valid coupon codes being rejected at checkout.",
                ),
                (
                    "i paid but the order shows as failed and now i've been charged twice",
                    "Critical",
                    "Failed Order Charge",
                    "User was charged twice for an order the app shows as failed.",
                ),
            ),
            "Complaint": (
                (
                    "shipping takes forever and the delivery dates are always wrong",
                    "Medium",
                    "Slow Shipping",
                    "User complains about slow shipping and inaccurate delivery dates.",
                ),
                (
                    "prices in the app are higher than in the store, not cool",
                    "Low",
                    "Higher App Prices",
                    "User complains that prices are higher in the app than in store.",
                ),
                (
                    "got a broken item and they refused to refund me",
                    "High",
                    "Refund Refused",
                    "User complains about a refused refund for a damaged item.",
                ),
            ),
            "Praise": (
                (
                    "found everything i needed and it arrived the next day",
                    "Low",
                    "Fast Delivery",
                    "User praises finding items easily and next-day delivery.",
                ),
            ),
            "Question": (
                (
                    "can i change the delivery address after placing an order?",
                    "Medium",
                    "Change Delivery Address",
                    "User asks whether the delivery address can be changed after ordering.",
                ),
            ),
        },
    ),
    Domain(
        kind="game",
        purpose="a quick game on the bus",
        apps=("Dragon Tactics", "Puzzle Harbor", "Galaxy Miners", "Farmstead Saga", "Pixel Kart"),
        features=("multiplayer", "daily rewards", "leaderboard", "cloud save", "guild chat"),
        actions=(
            ("start a match", "Match Start"),
            ("claim daily rewards", "Daily Rewards"),
            ("open the shop", "In-Game Shop"),
            ("load my save", "Save Loading"),
            ("join a guild", "Guild Joining"),
        ),
        screens=("loading screen", "main menu", "shop", "level select"),
        data=("save file", "progress", "gems", "unlocked characters"),
        purchases=("gem pack", "battle pass", "starter bundle"),
        wishes=(
            "controller support",
            "a hard mode",
            "more levels",
            "an offline mode",
            "a replay feature",
        ),
        capabilities=(
            "trade items with friends",
            "skip the tutorial",
            "turn off the background music",
            "play in landscape on my tablet",
        ),
        cores={
            "Bug Report": (
                (
                    "lost my {data} after the update, {n} hours of progress gone",
                    "Critical",
                    "Lost Game Progress",
                    "User lost {n} hours of game progress after an update.",
                ),
                (
                    "game crashes right in the middle of the boss fight every single time",
                    "High",
                    "Boss Fight Crash",
                    "User reports the game crashing during a boss fight.",
                ),
                (
                    "bought the {purchase} and never got the items",
                    "High",
                    "Missing Purchase",
                    "User paid for the {purchase} but did not receive the items.",
                ),
            ),
            "Complaint": (
                (
                    "pay to win garbage, you can't progress without spending money",
                    "Medium",
                    "Pay To Win",
                    "User complains the game is pay to win.",
                ),
                (
                    "energy system is ridiculous, 5 minutes of play then wait 3 hours",
                    "Low",
                    "Energy System",
                    "User complains about restrictive energy timers.",
                ),
                (
                    "matchmaking puts me against players way above my level",
                    "Low",
                    "Unfair Matchmaking",
                    "User complains about unbalanced matchmaking.",
                ),
            ),
            "Praise": (
                (
                    "super addictive, the puzzles get harder at just the right pace",
                    "Low",
                    "Puzzle Difficulty",
                    "User praises the game's addictive puzzles and difficulty curve.",
                ),
                (
                    "no forced ads and you can actually win without paying, rare these days",
                    "Low",
                    "Fair Monetization",
                    "User praises the game's fair monetization.",
                ),
            ),
            "Question": (
                (
                    "how do i transfer my progress to a new phone",
                    "Medium",
                    "Progress Transfer",
                    "User asks how to move game progress to a new phone.",
                ),
            ),
        },
    ),
    Domain(
        kind="messaging",
        purpose="keeping in touch with family",
        apps=("ChatterBox", "Whisperly", "Ping Messenger", "GroupLoop"),
        features=("group chats", "voice notes", "video calls", "notifications", "message backup"),
        actions=(
            ("send a photo", "Photo Sending"),
            ("make a video call", "Video Calls"),
            ("open a chat", "Chat Opening"),
            ("send voice notes", "Voice Notes"),
            ("restore my backup", "Backup Restore"),
        ),
        screens=("chat list", "call screen", "settings page", "contacts tab"),
        data=("chat history", "photos", "contacts", "message backup"),
        purchases=("premium plan", "sticker pack"),
        wishes=(
            "message scheduling",
            "a way to edit sent messages",
            "read receipts toggle",
            "desktop app",
            "bigger group calls",
        ),
        capabilities=(
            "pin more than three chats",
            "mute a group for a week",
            "search inside a chat",
            "send files bigger than 100mb",
        ),
        cores={
            "Bug Report": (
                (
                    "messages show as sent but the other person never gets them",
                    "High",
                    "Undelivered Messages",
                    "User reports messages marked sent that never arrive.",
                ),
                (
                    "i restored my backup on a new phone and all my chats from last year are gone",
                    "Critical",
                    "Lost Chat History",
                    "User lost a year of chats after restoring a backup.",
                ),
                (
                    "the other person can't hear me on calls but i can hear them",
                    "High",
                    "One-Way Call Audio",
                    "User reports one-way audio on calls.",
                ),
            ),
            "Complaint": (
                (
                    "the app is full of stories and reels now, i just want to send messages",
                    "Low",
                    "Feature Bloat",
                    "User complains the app added unwanted stories and reels.",
                ),
            ),
            "Praise": (
                (
                    "video calls with my grandkids are crystal clear, thank you",
                    "Low",
                    "Video Call Quality",
                    "User praises the quality of video calls with family.",
                ),
            ),
            "Question": (
                (
                    "are my messages end to end encrypted?",
                    "Medium",
                    "Encryption",
                    "User asks whether messages are end-to-end encrypted.",
                ),
            ),
        },
    ),
    Domain(
        kind="fitness",
        purpose="tracking my workouts",
        apps=("StrideTrack", "PulseFit", "IronLog", "ZenYoga Daily"),
        features=(
            "workout tracking",
            "step counter",
            "heart rate sync",
            "meal logging",
            "sleep tracking",
        ),
        actions=(
            ("log a workout", "Workout Logging"),
            ("sync my watch", "Watch Sync"),
            ("start a run", "Run Tracking"),
            ("log my meals", "Meal Logging"),
        ),
        screens=("dashboard", "workout screen", "summary page", "profile"),
        data=("workout history", "run data", "streak", "personal records"),
        purchases=("premium subscription", "training plan"),
        wishes=(
            "custom workouts",
            "garmin sync",
            "a rest timer",
            "strava integration",
            "a water intake tracker",
        ),
        capabilities=(
            "edit a workout after saving it",
            "set weekly goals",
            "see my progress per muscle group",
            "track runs without my phone",
        ),
        cores={
            "Bug Report": (
                (
                    "gps stops tracking halfway through my run and the distance is way off",
                    "Medium",
                    "GPS Tracking",
                    "User reports GPS tracking stopping mid-run with wrong distance.",
                ),
                (
                    "my {n} day streak reset to zero for no reason",
                    "High",
                    "Streak Reset",
                    "User's {n}-day streak was reset without reason.",
                ),
                (
                    "steps are counted double when i wear my watch",
                    "Low",
                    "Double Step Count",
                    "User reports steps being double counted with a watch.",
                ),
            ),
            "Complaint": (
                (
                    "every single workout is locked behind premium now",
                    "Medium",
                    "Premium Lock",
                    "User complains that workouts now require premium.",
                ),
            ),
            "Praise": (
                (
                    "lost 15 pounds using this app, the meal logging keeps me honest",
                    "Low",
                    "Weight Loss",
                    "User credits the app with helping them lose weight.",
                ),
                (
                    "the yoga sessions are calm and easy to follow, perfect for mornings",
                    "Low",
                    "Yoga Sessions",
                    "User praises the yoga sessions.",
                ),
            ),
            "Question": (
                (
                    "does it work with a fitbit or only apple watch?",
                    "Low",
                    "Device Compatibility",
                    "User asks which wearables the app supports.",
                ),
            ),
        },
    ),
    Domain(
        kind="streaming",
        purpose="watching shows",
        apps=("StreamBox", "FlickNest", "Tuneful", "CastAway TV"),
        features=("downloads", "subtitles", "playback", "casting", "profiles"),
        actions=(
            ("play a video", "Video Playback"),
            ("download episodes", "Episode Downloads"),
            ("cast to my tv", "Casting"),
            ("switch profiles", "Profile Switching"),
            ("resume a show", "Resume Playback"),
        ),
        screens=("player", "home screen", "downloads tab", "search page"),
        data=("watchlist", "downloads", "playlists", "watch history"),
        purchases=("subscription", "movie rental", "season pass"),
        wishes=(
            "a skip intro button",
            "a sleep timer",
            "offline downloads on more devices",
            "a kids profile lock",
            "lyrics on screen",
        ),
        capabilities=(
            "hide shows i already watched",
            "change subtitle size",
            "remove something from continue watching",
            "watch in picture in picture",
        ),
        cores={
            "Bug Report": (
                (
                    "video freezes every 10 seconds but the audio keeps going",
                    "High",
                    "Video Freezing",
                    "User reports video freezing while audio continues.",
                ),
                (
                    "subtitles are out of sync by a few seconds on every episode",
                    "Medium",
                    "Subtitle Sync",
                    "User reports subtitles out of sync.",
                ),
                (
                    "my downloaded episodes vanish when i go offline, which is the whole point",
                    "High",
                    "Vanishing Downloads",
                    "User reports downloaded episodes disappearing offline.",
                ),
            ),
            "Complaint": (
                (
                    "the catalog keeps shrinking while the price keeps going up",
                    "Medium",
                    "Shrinking Catalog",
                    "User complains about a smaller catalog and higher price.",
                ),
                (
                    "password sharing crackdown is greedy, i'm cancelling",
                    "Medium",
                    "Password Sharing",
                    "User objects to the password sharing restrictions.",
                ),
            ),
            "Praise": (
                (
                    "the recommendations are spot on, found so many great shows",
                    "Low",
                    "Recommendations",
                    "User praises the show recommendations.",
                ),
                (
                    "best playlists and the sound quality is amazing",
                    "Low",
                    "Sound Quality",
                    "User praises the playlists and sound quality.",
                ),
            ),
            "Question": (
                (
                    "how many screens can i watch on at the same time with the basic plan?",
                    "Low",
                    "Simultaneous Streams",
                    "User asks how many simultaneous streams the basic plan allows.",
                ),
            ),
        },
    ),
    Domain(
        kind="maps",
        purpose="getting around town",
        apps=("RouteWise", "WayPoint Maps", "TrailFinder", "Commutr"),
        features=(
            "navigation",
            "offline maps",
            "traffic alerts",
            "voice guidance",
            "transit times",
        ),
        actions=(
            ("start navigation", "Navigation"),
            ("download offline maps", "Offline Maps"),
            ("search an address", "Address Search"),
            ("share my location", "Location Sharing"),
        ),
        screens=("map view", "route screen", "search bar", "saved places list"),
        data=("saved places", "offline maps", "recent trips"),
        purchases=("pro upgrade", "offline map pack"),
        wishes=(
            "an avoid tolls option",
            "speed camera alerts",
            "lane guidance",
            "bike routes",
            "an ev charging station layer",
        ),
        capabilities=(
            "add multiple stops to a route",
            "save a route for later",
            "see elevation on hiking trails",
            "change the voice",
        ),
        cores={
            "Bug Report": (
                (
                    "navigation sent me the wrong way down a one way street",
                    "High",
                    "Wrong Way Routing",
                    "User was routed the wrong way down a one-way street.",
                ),
                (
                    "voice guidance goes silent after the first turn",
                    "High",
                    "Silent Voice Guidance",
                    "User reports voice guidance stopping after the first turn.",
                ),
                (
                    "bus arrival times are always 10 minutes off",
                    "Medium",
                    "Transit Time Accuracy",
                    "User reports inaccurate bus arrival times.",
                ),
            ),
            "Complaint": (
                (
                    "it keeps tracking my location even when i'm not using it, creepy",
                    "High",
                    "Background Tracking",
                    "User objects to location tracking while the app is unused.",
                ),
            ),
            "Praise": (
                (
                    "offline maps saved me when i had no signal in the mountains",
                    "Low",
                    "Offline Maps",
                    "User praises offline maps working without signal.",
                ),
            ),
            "Question": (
                (
                    "does navigation work without mobile data?",
                    "Low",
                    "Offline Navigation",
                    "User asks whether navigation works without data.",
                ),
            ),
        },
    ),
    Domain(
        kind="food",
        purpose="ordering dinner",
        apps=("Grubly", "DinnerDash", "BiteRunner"),
        features=("order tracking", "checkout", "promo codes", "reorder", "driver chat"),
        actions=(
            ("place an order", "Ordering"),
            ("apply a promo code", "Promo Codes"),
            ("track my delivery", "Delivery Tracking"),
            ("tip the driver", "Driver Tipping"),
        ),
        screens=("checkout page", "restaurant menu", "order status page", "cart"),
        data=("order history", "saved addresses", "favorites"),
        purchases=("order", "delivery pass"),
        wishes=(
            "group ordering",
            "allergy filters",
            "scheduled orders",
            "a vegetarian filter",
            "split the bill",
        ),
        capabilities=(
            "add notes for the driver",
            "reorder my last meal in one tap",
            "see the fees before checkout",
            "pick a delivery time",
        ),
        cores={
            "Bug Report": (
                (
                    "i got charged but the restaurant never received my order",
                    "Critical",
                    "Lost Order Charge",
                    "User was charged for an order the restaurant never received.",
                ),
                (
                    "the driver map hasn't moved in 40 minutes, tracking is stuck",
                    "Medium",
                    "Stuck Tracking",
                    "User reports delivery tracking frozen.",
                ),
            ),
            "Complaint": (
                (
                    "food took two hours and arrived cold, never again",
                    "Medium",
                    "Late Cold Delivery",
                    "User complains their food arrived two hours late and cold.",
                ),
                (
                    "service fee, delivery fee, small order fee, it's fees all the way down",
                    "Medium",
                    "Hidden Fees",
                    "User complains about stacked delivery fees.",
                ),
                (
                    "half my order was missing and support just gave me a coupon",
                    "High",
                    "Missing Items",
                    "User complains about missing items and a poor support response.",
                ),
            ),
            "Praise": (
                (
                    "food always arrives hot and the drivers are super friendly",
                    "Low",
                    "Reliable Delivery",
                    "User praises hot food and friendly drivers.",
                ),
            ),
            "Question": (
                (
                    "how do i get a refund for a missing item?",
                    "Medium",
                    "Missing Item Refund",
                    "User asks how to get refunded for a missing item.",
                ),
            ),
        },
    ),
    Domain(
        kind="productivity",
        purpose="keeping my notes and tasks organized",
        apps=("NoteNest", "Taskly", "DayPlanner Pro", "Jotter"),
        features=("sync", "reminders", "widgets", "search", "shared lists"),
        actions=(
            ("create a note", "Note Creation"),
            ("set a reminder", "Reminders"),
            ("share a list", "List Sharing"),
            ("attach a file", "Attachments"),
        ),
        screens=("notes list", "editor", "calendar view", "settings page"),
        data=("notes", "tasks", "calendar events", "attachments"),
        purchases=("pro plan", "lifetime license"),
        wishes=(
            "markdown support",
            "a calendar view",
            "recurring tasks",
            "tags for notes",
            "end to end encryption",
        ),
        capabilities=(
            "lock individual notes",
            "drag tasks between lists",
            "export everything to pdf",
            "set a default reminder time",
        ),
        cores={
            "Bug Report": (
                (
                    "notes didn't sync and i lost a whole day of work",
                    "Critical",
                    "Lost Notes",
                    "User lost a day of notes because sync failed.",
                ),
                (
                    "reminders never go off, i missed a doctor's appointment because of it",
                    "High",
                    "Missed Reminders",
                    "User reports reminders not firing, causing a missed appointment.",
                ),
            ),
            "Complaint": (
                (
                    "switched to a subscription after i paid for a lifetime license, shady",
                    "High",
                    "Lifetime License Change",
                    "User objects to a subscription replacing their lifetime license.",
                ),
            ),
            "Praise": (
                (
                    "it finally got me organized, my whole week fits on one screen",
                    "Low",
                    "Weekly Planning",
                    "User praises the app for getting them organized.",
                ),
            ),
            "Question": (
                (
                    "can i share a list with someone who doesn't have the app?",
                    "Low",
                    "List Sharing",
                    "User asks whether lists can be shared with non-users.",
                ),
            ),
        },
    ),
    Domain(
        kind="photo",
        purpose="editing my photos",
        apps=("SnapForge", "Lumen Edit", "PixelPop"),
        features=("filters", "export", "cloud sync", "cropping", "batch editing"),
        actions=(
            ("export a photo", "Photo Export"),
            ("apply a filter", "Filters"),
            ("import from my gallery", "Gallery Import"),
            ("crop an image", "Cropping"),
        ),
        screens=("editor", "gallery", "export screen", "filter panel"),
        data=("edits", "presets", "photo library"),
        purchases=("pro filters", "premium pack"),
        wishes=(
            "raw file support",
            "a before and after slider",
            "custom presets",
            "a watermark tool",
            "more fonts",
        ),
        capabilities=(
            "undo more than one step",
            "export in full resolution",
            "edit several photos at once",
            "remove the watermark",
        ),
        cores={
            "Bug Report": (
                (
                    "exported photos come out blurry and tiny no matter what setting i pick",
                    "Medium",
                    "Blurry Exports",
                    "User reports exported photos being blurry and low resolution.",
                ),
                (
                    "the app deleted my edited photos from my gallery",
                    "Critical",
                    "Deleted Photos",
                    "User reports the app deleting edited photos.",
                ),
            ),
            "Complaint": (
                (
                    "giant watermark on every photo unless you pay, what a joke",
                    "Medium",
                    "Watermark Paywall",
                    "User complains about a watermark unless they pay.",
                ),
            ),
            "Praise": (
                (
                    "the filters are gorgeous and editing is so intuitive",
                    "Low",
                    "Beautiful Filters",
                    "User praises the filters and intuitive editing.",
                ),
            ),
            "Question": (
                (
                    "does the pro version remove the watermark?",
                    "Low",
                    "Pro Watermark",
                    "User asks if the pro version removes the watermark.",
                ),
            ),
        },
    ),
    Domain(
        kind="travel",
        purpose="booking trips",
        apps=("TripNest", "Ryde", "SkyHop", "StayFinder"),
        features=("booking", "fare estimates", "trip history", "boarding passes", "price alerts"),
        actions=(
            ("book a ride", "Ride Booking"),
            ("check in for my flight", "Flight Check-In"),
            ("cancel a booking", "Booking Cancellation"),
            ("add a payment card", "Payment Card"),
        ),
        screens=("booking page", "trip details", "payment screen", "home screen"),
        data=("bookings", "boarding passes", "trip history", "loyalty points"),
        purchases=("booking", "ride", "flight"),
        wishes=(
            "a calendar export for trips",
            "price history charts",
            "seat selection",
            "a shared trip itinerary",
            "airport maps",
        ),
        capabilities=(
            "split the fare with friends",
            "save my passport details",
            "filter hotels by free cancellation",
            "book for someone else",
        ),
        cores={
            "Bug Report": (
                (
                    "my boarding pass disappeared from the app right at the gate",
                    "Critical",
                    "Missing Boarding Pass",
                    "User's boarding pass vanished from the app at the gate.",
                ),
                (
                    "the driver location jumps around the map and the eta is always wrong",
                    "Medium",
                    "Driver Location",
                    "User reports erratic driver location and ETA.",
                ),
            ),
            "Complaint": (
                (
                    "surge pricing at 3x on a normal tuesday afternoon is a ripoff",
                    "Medium",
                    "Surge Pricing",
                    "User complains about excessive surge pricing.",
                ),
                (
                    "the hotel was nothing like the photos and the app won't help",
                    "High",
                    "Misleading Listing",
                    "User complains about a misleading hotel listing and no help.",
                ),
            ),
            "Praise": (
                (
                    "booked a whole trip in five minutes, everything just worked",
                    "Low",
                    "Easy Booking",
                    "User praises how quickly they booked a trip.",
                ),
            ),
            "Question": (
                (
                    "can i get a receipt for a ride from last month?",
                    "Low",
                    "Ride Receipt",
                    "User asks how to get a receipt for an old ride.",
                ),
            ),
        },
    ),
)

GENERIC_WISHES = (
    "dark mode",
    "a home screen widget",
    "tablet support",
    "landscape mode",
    "an apple watch app",
    "multiple accounts",
    "custom themes",
    "two factor authentication",
    "a bigger font option",
    "face id login",
    "an offline mode",
    "a search bar",
)
GENERIC_CAPABILITIES = (
    "export my {data}",
    "use the app offline",
    "sort my {data} by date",
    "hide {feature} from the home screen",
    "turn off autoplay",
    "log in with face id",
    "use two accounts at once",
    "customize the {screen}",
)
INTEGRATIONS = ("google calendar", "apple health", "spotify", "paypal", "alexa", "slack", "outlook")
DEVICES = (
    "iphone 13",
    "pixel 7",
    "galaxy s22",
    "ipad",
    "oneplus 9",
    "moto g",
    "iphone 15 pro",
    "galaxy tab",
    "android 14 phone",
    "iphone se",
)
VERSIONS = ("version 4.2", "v5.0.1", "the 3.8 update", "the latest update", "yesterday's update")
TIMES = ("two years", "6 months", "about a year", "a few weeks", "3 years", "ages", "5 years")
COMPETITORS = ("the old version", "every other app i tried", "the competition", "the website")

# --------------------------------------------------------------------------------------------
# Category cores shared by all domains.
# --------------------------------------------------------------------------------------------

BUG: tuple[Core, ...] = (
    (
        "the app crashes every time i try to {action}",
        "Critical",
        "{action_topic} Crash",
        "User reports the app crashes when trying to {action}.",
    ),
    (
        "crashes on launch since {version}",
        "Critical",
        "Crash On Launch",
        "User reports the app crashes on launch since {version}.",
    ),
    (
        "i lost all my {data} after updating",
        "Critical",
        "Lost {data}",
        "User lost all their {data} after an update.",
    ),
    (
        "got charged twice for one {purchase} and the app just shows an error",
        "Critical",
        "Double Charge",
        "User was charged twice for a single {purchase}.",
    ),
    (
        "app won't open, white screen for a second and then it closes",
        "Critical",
        "Startup Crash",
        "User reports the app closing on a white screen at startup.",
    ),
    (
        "paid for a {purchase} but the app says the payment failed and the money is gone",
        "Critical",
        "Payment Failure",
        "User paid for a {purchase} but the app reports the payment failed.",
    ),
    (
        "when i open the {screen} i can see someone else's name and details",
        "Critical",
        "Data Exposure",
        "User sees another person's details on the {screen}.",
    ),
    (
        "my {data} just disappeared, everything is gone",
        "Critical",
        "Missing {data}",
        "User reports their {data} disappeared.",
    ),
    (
        "{feature} crashes the whole app on my {device}",
        "Critical",
        "{feature} Crash",
        "User reports {feature} crashing the app on a {device}.",
    ),
    (
        "can't log in at all, says invalid password even after i reset it",
        "High",
        "Login Failure",
        "User cannot log in even after resetting the password.",
    ),
    (
        "after {version} it freezes on the {screen}",
        "High",
        "{screen} Freeze",
        "User reports the app freezing on the {screen} after {version}.",
    ),
    (
        "{feature} is completely broken since the update",
        "High",
        "Broken {feature}",
        "User reports {feature} broken since the update.",
    ),
    (
        "the {screen} doesn't load, just a spinning wheel forever",
        "High",
        "{screen} Not Loading",
        "User reports the {screen} never finishes loading.",
    ),
    (
        "{feature} shows the wrong numbers",
        "High",
        "Incorrect {feature}",
        "User reports {feature} showing incorrect numbers.",
    ),
    (
        "error 500 every time i {action}",
        "High",
        "Error 500",
        "User gets an error 500 when trying to {action}.",
    ),
    (
        "stuck in a login loop, it asks for the code and then sends me back to the start",
        "High",
        "Login Loop",
        "User is stuck in a login loop.",
    ),
    (
        "password reset email never arrives so i'm locked out",
        "High",
        "Password Reset Email",
        "User is locked out because the password reset email never arrives.",
    ),
    (
        "it says no internet connection but my wifi works fine in every other app",
        "High",
        "False Offline Error",
        "User gets a no-connection error despite working internet.",
    ),
    (
        "the verification code never comes through so i can't get in",
        "High",
        "Verification Code",
        "User cannot log in because the verification code never arrives.",
    ),
    (
        "app freezes and my phone gets really hot",
        "High",
        "Freezing And Overheating",
        "User reports the app freezing and the phone overheating.",
    ),
    (
        "{feature} stopped working on my {device} after {version}",
        "High",
        "{feature} Not Working",
        "User reports {feature} stopped working after {version}.",
    ),
    (
        "the app keeps logging me out every few minutes",
        "Medium",
        "Random Logouts",
        "User is logged out every few minutes.",
    ),
    (
        "notifications show up hours late or not at all",
        "Medium",
        "Delayed Notifications",
        "User reports late or missing notifications.",
    ),
    (
        "the save button on the {screen} doesn't do anything when i tap it",
        "Medium",
        "Unresponsive Button",
        "User reports an unresponsive button on the {screen}.",
    ),
    (
        "battery drains like crazy since {version}",
        "Medium",
        "Battery Drain",
        "User reports heavy battery drain since {version}.",
    ),
    (
        "sync between my phone and tablet isn't working, changes never show up",
        "Medium",
        "Sync Failure",
        "User reports sync failing between devices.",
    ),
    (
        "sound cuts out randomly",
        "Medium",
        "Audio Dropouts",
        "User reports audio cutting out randomly.",
    ),
    (
        "pictures won't upload, it just says something went wrong",
        "Medium",
        "Upload Failure",
        "User reports photo uploads failing with a generic error.",
    ),
    (
        "if i rotate the screen the app restarts and i lose what i typed",
        "Medium",
        "Rotation Restart",
        "User loses input because the app restarts on rotation.",
    ),
    (
        "search returns nothing even for things that are definitely there",
        "Medium",
        "Broken Search",
        "User reports search returning no results for existing items.",
    ),
    (
        "tapping {feature} gives me a blank page",
        "Medium",
        "Blank {feature} Page",
        "User gets a blank page when opening {feature}.",
    ),
    (
        "the app uses a ton of mobile data in the background",
        "Medium",
        "Background Data Usage",
        "User reports heavy background data usage.",
    ),
    (
        "text overlaps on the {screen} on my {device}",
        "Low",
        "Text Overlap",
        "User reports overlapping text on the {screen}.",
    ),
    (
        "in dark mode some labels are black on black and unreadable",
        "Low",
        "Dark Mode Contrast",
        "User reports unreadable labels in dark mode.",
    ),
    (
        "small typo on the {screen}, it says recieve",
        "Low",
        "Typo",
        "User points out a typo on the {screen}.",
    ),
    (
        "the keyboard covers the text box on the {screen}",
        "Low",
        "Keyboard Overlap",
        "User reports the keyboard covering the text box on the {screen}.",
    ),
    (
        "scrolling is super laggy on the {screen}",
        "Low",
        "Laggy Scrolling",
        "User reports laggy scrolling on the {screen}.",
    ),
    (
        "times in the app are off by an hour since the clocks changed",
        "Low",
        "Wrong Timezone",
        "User reports times off by an hour after the clock change.",
    ),
    (
        "the widget shows yesterday's info and never refreshes",
        "Low",
        "Stale Widget",
        "User reports the widget not refreshing.",
    ),
    (
        "the back button takes me to the home screen instead of the previous page",
        "Low",
        "Back Navigation",
        "User reports the back button going to the wrong screen.",
    ),
    (
        "profile picture upload rotates my photo sideways",
        "Low",
        "Rotated Profile Photo",
        "User reports profile photos uploading rotated.",
    ),
)

BUG_SHORT: tuple[Core, ...] = (
    ("crashes on startup", "Critical", "Startup Crash", "User reports a crash on startup."),
    ("keeps crashing constantly", "High", "Frequent Crashes", "User reports frequent crashes."),
    ("won't even open", "Critical", "App Won't Open", "User reports the app won't open."),
    ("login broken again", "High", "Login Broken", "User reports login is broken."),
    ("{feature} not working", "High", "{feature} Not Working", "User says {feature} is broken."),
    ("freezes all the time", "Medium", "Freezing", "User reports constant freezing."),
    ("black screen after update", "Critical", "Black Screen", "User sees a black screen."),
)

FEATURE: tuple[Core, ...] = (
    ("please add {wish}", "Low", "{wish}", "User requests {wish}."),
    (
        "would love to see {wish} in a future update",
        "Low",
        "{wish}",
        "User would like {wish} in a future update.",
    ),
    (
        "it would be great if i could {capability}",
        "Low",
        "{capability}",
        "User asks for the ability to {capability}.",
    ),
    ("any chance you could add {wish}?", "Low", "{wish}", "User asks for {wish} to be added."),
    ("{wish} pls", "Low", "{wish}", "User requests {wish}."),
    (
        "the only thing missing is {wish}",
        "Low",
        "{wish}",
        "User says {wish} is the only missing feature.",
    ),
    ("suggestion: {wish}", "Low", "{wish}", "User suggests adding {wish}."),
    ("i wish there was {wish}", "Low", "{wish}", "User wishes the app had {wish}."),
    (
        "can you make it possible to {capability}",
        "Medium",
        "{capability}",
        "User asks for a way to {capability}.",
    ),
    ("feature request: {wish}", "Low", "{wish}", "User requests {wish}."),
    ("we really need {wish}, asap", "Medium", "{wish}", "User urgently requests {wish}."),
    (
        "add {wish} and i'll give it 5 stars",
        "Low",
        "{wish}",
        "User promises five stars if {wish} is added.",
    ),
    ("good app but it needs {wish}", "Low", "{wish}", "User likes the app but wants {wish}."),
    (
        "please bring back the old {screen} layout, the new one takes more taps",
        "Medium",
        "Old {screen} Layout",
        "User asks for the old {screen} layout to return.",
    ),
    (
        "it'd be cool if {feature} had more options",
        "Low",
        "More {feature} Options",
        "User would like more options in {feature}.",
    ),
    ("let us {capability}", "Low", "{capability}", "User asks to be able to {capability}."),
    (
        "please make a proper ipad version, the stretched phone layout is hard to use",
        "Medium",
        "iPad Version",
        "User requests a native iPad version.",
    ),
    (
        "an option for larger text would help my mom a lot",
        "Medium",
        "Larger Text Option",
        "User requests a larger text option for accessibility.",
    ),
    (
        "could you integrate with {integration}?",
        "Low",
        "{integration} Integration",
        "User requests integration with {integration}.",
    ),
    (
        "every other app has {wish}, why not this one",
        "Medium",
        "{wish}",
        "User requests {wish}, noting competitors have it.",
    ),
    (
        "screen reader support needs work, please label the buttons so blind users can use it",
        "High",
        "Screen Reader Labels",
        "User requests proper screen reader labels for accessibility.",
    ),
    (
        "idea: let me {capability}, would save so much time",
        "Low",
        "{capability}",
        "User suggests letting users {capability}.",
    ),
    (
        "would pay extra for {wish}",
        "Low",
        "{wish}",
        "User would pay for {wish}.",
    ),
    (
        "hoping the next version adds {wish}",
        "Low",
        "{wish}",
        "User hopes the next version adds {wish}.",
    ),
    (
        "please give us a setting to turn off the sounds",
        "Low",
        "Sound Toggle",
        "User requests a setting to turn off sounds.",
    ),
    (
        "it needs a way to {capability}",
        "Low",
        "{capability}",
        "User requests a way to {capability}.",
    ),
    (
        "love the app, just add {wish} and it's perfect",
        "Low",
        "{wish}",
        "User enjoys the app and requests {wish}.",
    ),
    (
        "make {feature} customizable please",
        "Low",
        "Customizable {feature}",
        "User requests customization for {feature}.",
    ),
    (
        "i'd like the option to {capability}",
        "Low",
        "{capability}",
        "User would like the option to {capability}.",
    ),
    (
        "missing {wish}, for a paid app that's a must",
        "Medium",
        "{wish}",
        "User considers {wish} a must-have for a paid app.",
    ),
)

FEATURE_SHORT: tuple[Core, ...] = (
    ("add dark mode", "Low", "Dark Mode", "User requests dark mode."),
    ("need a widget", "Low", "Home Screen Widget", "User requests a widget."),
    ("pls add {wish}", "Low", "{wish}", "User requests {wish}."),
    ("landscape mode please", "Low", "Landscape Mode", "User requests landscape mode."),
    ("want {wish}", "Low", "{wish}", "User wants {wish}."),
    ("tablet version please!", "Low", "Tablet Version", "User requests a tablet version."),
)

COMPLAINT: tuple[Core, ...] = (
    (
        "way too many ads, there's one after every single tap",
        "Medium",
        "Excessive Ads",
        "User complains about too many ads.",
    ),
    (
        "the new subscription price is a ripoff",
        "Medium",
        "Subscription Price",
        "User complains the new subscription price is too high.",
    ),
    (
        "they moved {feature} behind a paywall",
        "Medium",
        "Paywalled {feature}",
        "User complains {feature} now requires payment.",
    ),
    (
        "customer support never answered any of my emails",
        "High",
        "Unresponsive Support",
        "User complains customer support never replied.",
    ),
    (
        "the redesign is ugly and confusing",
        "Low",
        "Redesign",
        "User dislikes the new design.",
    ),
    (
        "they charged me after i cancelled my subscription",
        "High",
        "Charge After Cancellation",
        "User was charged after cancelling the subscription.",
    ),
    (
        "fees are way too high compared to {competitor}",
        "Medium",
        "High Fees",
        "User complains the fees are too high.",
    ),
    (
        "why does this app need access to my contacts and microphone",
        "Medium",
        "Excessive Permissions",
        "User complains about excessive permission requests.",
    ),
    (
        "i'm pretty sure they sell my data, the privacy policy is a mess",
        "High",
        "Privacy Concerns",
        "User is concerned the app sells personal data.",
    ),
    (
        "constant promotional notifications, it's basically spam",
        "Low",
        "Notification Spam",
        "User complains about promotional notification spam.",
    ),
    (
        "the app got so slow and bloated, it used to be simple",
        "Medium",
        "Bloated App",
        "User complains the app has become slow and bloated.",
    ),
    (
        "the update removed {feature}, the only reason i used this app",
        "Medium",
        "Removed {feature}",
        "User is upset that {feature} was removed.",
    ),
    (
        "having to create an account just to look around is annoying",
        "Low",
        "Forced Sign Up",
        "User dislikes having to sign up to browse.",
    ),
    (
        "the free trial auto renewed without any warning",
        "High",
        "Unexpected Renewal",
        "User complains the free trial renewed without warning.",
    ),
    (
        "my refund request got denied with no explanation, terrible service",
        "High",
        "Refund Denied",
        "User complains their refund was denied without explanation.",
    ),
    (
        "used to be great, now it's just a cash grab",
        "Medium",
        "Cash Grab",
        "User feels the app has become a cash grab.",
    ),
    (
        "{app} clearly doesn't care about its users anymore",
        "Low",
        "Ignoring Users",
        "User feels {app} no longer cares about users.",
    ),
    (
        "video ads blast sound even when my phone is on silent",
        "Medium",
        "Loud Ads",
        "User complains ads play loud audio on silent.",
    ),
    (
        "the layout is cluttered and it's hard to find anything",
        "Low",
        "Cluttered Interface",
        "User complains the interface is cluttered.",
    ),
    (
        "waited on hold for 45 minutes and then the call dropped",
        "High",
        "Long Support Wait",
        "User complains about a long support wait.",
    ),
    (
        "it nags me to upgrade to premium every few seconds",
        "Medium",
        "Upgrade Nagging",
        "User complains about constant upgrade prompts.",
    ),
    (
        "honestly not worth the money",
        "Medium",
        "Poor Value",
        "User feels the app is not worth the price.",
    ),
    (
        "my account was banned with no explanation and nobody will tell me why",
        "High",
        "Unexplained Ban",
        "User's account was banned without explanation.",
    ),
    (
        "the support chat is just a useless bot that loops",
        "Medium",
        "Support Bot",
        "User complains the support chatbot is useless.",
    ),
    (
        "they keep changing the layout and i have to relearn everything",
        "Low",
        "Frequent Layout Changes",
        "User dislikes frequent layout changes.",
    ),
    (
        "prices went up twice this year and nothing improved",
        "Medium",
        "Price Increases",
        "User complains about repeated price increases.",
    ),
    (
        "the ads are for sketchy stuff, not ok when kids use this",
        "Medium",
        "Inappropriate Ads",
        "User complains about inappropriate ads.",
    ),
    (
        "so disappointed with {app}, it went downhill fast",
        "Low",
        "Declining Quality",
        "User is disappointed that {app} has declined.",
    ),
    (
        "the {purchase} is overpriced for what you get",
        "Medium",
        "Overpriced {purchase}",
        "User considers the {purchase} overpriced.",
    ),
    (
        "cancelling the subscription is deliberately hidden five menus deep",
        "High",
        "Hidden Cancellation",
        "User complains the cancellation option is hidden.",
    ),
    (
        "the rating popup shows up every time i open the app",
        "Low",
        "Rating Popups",
        "User complains about repeated rating popups.",
    ),
)

COMPLAINT_SHORT: tuple[Core, ...] = (
    ("too many ads", "Medium", "Excessive Ads", "User complains about too many ads."),
    ("total ripoff", "Medium", "Poor Value", "User calls the app a ripoff."),
    ("worst customer service ever", "High", "Customer Service", "User complains about support."),
    ("waste of money", "Medium", "Poor Value", "User feels the app wastes money."),
    ("greedy greedy greedy", "Medium", "Greedy Monetization", "User calls the app greedy."),
    ("hate the new design", "Low", "New Design", "User dislikes the new design."),
)

PRAISE: tuple[Core, ...] = (
    ("love this app", "Low", "Overall Experience", "User loves the app."),
    (
        "best {kind} app i've ever used",
        "Low",
        "Best {kind} App",
        "User calls it the best {kind} app they have used.",
    ),
    ("{feature} is amazing", "Low", "{feature}", "User praises {feature}."),
    (
        "works perfectly, thanks to the devs",
        "Low",
        "Reliability",
        "User says the app works perfectly and thanks the developers.",
    ),
    (
        "super easy to {action}",
        "Low",
        "Easy {action_topic}",
        "User praises how easy it is to {action}.",
    ),
    (
        "the latest update is great, {feature} is so much faster now",
        "Low",
        "Faster {feature}",
        "User praises the faster {feature} in the latest update.",
    ),
    (
        "support fixed my problem within an hour, amazing service",
        "Low",
        "Helpful Support",
        "User praises fast and helpful customer support.",
    ),
    (
        "been using it for {time} and never had a single problem",
        "Low",
        "Long-Term Reliability",
        "User has used the app for {time} without problems.",
    ),
    (
        "clean design and really intuitive",
        "Low",
        "Clean Design",
        "User praises the clean and intuitive design.",
    ),
    ("saves me so much time every day", "Low", "Time Saver", "User says the app saves them time."),
    ("my kids love it", "Low", "Family Favorite", "User says their kids love the app."),
    (
        "finally an app that just works",
        "Low",
        "Just Works",
        "User is happy that the app simply works.",
    ),
    (
        "way better than {competitor}",
        "Low",
        "Better Than Alternatives",
        "User says the app is better than {competitor}.",
    ),
    (
        "the dark mode looks gorgeous",
        "Low",
        "Dark Mode",
        "User praises the look of dark mode.",
    ),
    (
        "smooth, fast and no annoying ads",
        "Low",
        "Smooth Experience",
        "User praises speed and no ads.",
    ),
    ("10/10 would recommend to anyone", "Low", "Recommendation", "User highly recommends the app."),
    ("great app for {purpose}", "Low", "{purpose}", "User finds the app great for {purpose}."),
    (
        "exactly what i needed",
        "Low",
        "Meets Needs",
        "User says the app is exactly what they needed.",
    ),
    (
        "thank you for listening to feedback, the new {feature} is exactly what we asked for",
        "Low",
        "New {feature}",
        "User thanks the developers for the new {feature}.",
    ),
    (
        "honestly one of the few apps i'd pay for, worth every penny",
        "Low",
        "Worth The Price",
        "User feels the app is worth paying for.",
    ),
    (
        "the {screen} redesign is beautiful",
        "Low",
        "{screen} Redesign",
        "User praises the redesigned {screen}.",
    ),
    (
        "i use {app} every day and it never lets me down",
        "Low",
        "Daily Use",
        "User relies on {app} daily without issues.",
    ),
    (
        "the onboarding was so smooth, i was set up in two minutes",
        "Low",
        "Smooth Onboarding",
        "User praises the quick onboarding.",
    ),
    (
        "five stars, the team keeps making it better with every update",
        "Low",
        "Steady Improvements",
        "User praises continuous improvements.",
    ),
    (
        "really impressed with how quick and light it is",
        "Low",
        "Performance",
        "User is impressed by the app's speed.",
    ),
    (
        "perfect for {purpose}, wouldn't switch for anything",
        "Low",
        "{purpose}",
        "User is loyal to the app for {purpose}.",
    ),
    (
        "the notifications are actually useful and not spammy",
        "Low",
        "Useful Notifications",
        "User praises useful, non-spammy notifications.",
    ),
    ("a joy to use", "Low", "Enjoyable Experience", "User enjoys using the app."),
    (
        "kudos to whoever designed the {screen}, it's so easy to read",
        "Low",
        "{screen} Design",
        "User praises the readable {screen} design.",
    ),
)

PRAISE_SHORT: tuple[Core, ...] = (
    ("love it!", "Low", "Overall Experience", "User loves the app."),
    ("great app", "Low", "Overall Experience", "User says the app is great."),
    ("best app ever", "Low", "Overall Experience", "User calls it the best app ever."),
    ("works great", "Low", "Reliability", "User says the app works great."),
    ("awesome", "Low", "Overall Experience", "User says the app is awesome."),
    ("perfect, no complaints", "Low", "Overall Experience", "User has no complaints."),
    ("amazing app thank you", "Low", "Overall Experience", "User thanks the developers."),
)

QUESTION: tuple[Core, ...] = (
    ("how do i {action}?", "Low", "{action_topic}", "User asks how to {action}."),
    (
        "is there a way to {capability}?",
        "Low",
        "{capability}",
        "User asks whether they can {capability}.",
    ),
    ("where can i find {feature}?", "Low", "{feature} Location", "User asks where {feature} is."),
    (
        "does this app work on {device}?",
        "Low",
        "Device Support",
        "User asks whether the app supports {device}.",
    ),
    (
        "how do i change the email address on my account?",
        "Low",
        "Change Email",
        "User asks how to change their email address.",
    ),
    (
        "can i use this without making an account?",
        "Low",
        "Account Requirement",
        "User asks whether an account is required.",
    ),
    (
        "how do i cancel my subscription?",
        "Medium",
        "Cancel Subscription",
        "User asks how to cancel their subscription.",
    ),
    (
        "is my data shared with third parties?",
        "Medium",
        "Data Sharing",
        "User asks whether their data is shared with third parties.",
    ),
    (
        "why does the app need my location?",
        "Low",
        "Location Permission",
        "User asks why location access is needed.",
    ),
    (
        "does the premium plan include {feature}?",
        "Low",
        "Premium {feature}",
        "User asks whether premium includes {feature}.",
    ),
    (
        "how do i delete my account completely?",
        "Medium",
        "Account Deletion",
        "User asks how to delete their account.",
    ),
    (
        "can i move my {data} to a new phone?",
        "Medium",
        "{data} Transfer",
        "User asks how to move their {data} to a new phone.",
    ),
    (
        "what does the little orange icon on the {screen} mean",
        "Low",
        "Icon Meaning",
        "User asks what an icon on the {screen} means.",
    ),
    (
        "how long does a refund usually take?",
        "Medium",
        "Refund Timing",
        "User asks how long refunds take.",
    ),
    (
        "do i need wifi for {feature} to work?",
        "Low",
        "{feature} Connectivity",
        "User asks whether {feature} needs wifi.",
    ),
    (
        "how can i turn off the notifications?",
        "Low",
        "Notification Settings",
        "User asks how to turn off notifications.",
    ),
    (
        "anyone know how to {action}",
        "Low",
        "{action_topic}",
        "User asks how to {action}.",
    ),
    ("is there a family plan?", "Low", "Family Plan", "User asks whether a family plan exists."),
    (
        "what happened to {feature}? i can't find it anymore",
        "Medium",
        "Missing {feature}",
        "User asks where {feature} went.",
    ),
    (
        "how do i get back into my account if i lost my phone with the authenticator?",
        "High",
        "Account Recovery",
        "User asks how to recover their account after losing their phone.",
    ),
    (
        "is there a student discount",
        "Low",
        "Student Discount",
        "User asks about a student discount.",
    ),
    (
        "can i use the same account on my {device} and my laptop?",
        "Low",
        "Multi-Device Use",
        "User asks whether one account works on several devices.",
    ),
    (
        "will {wish} ever be added or is it already there somewhere?",
        "Low",
        "{wish}",
        "User asks whether {wish} exists or is planned.",
    ),
    (
        "what's the difference between the free and paid version?",
        "Low",
        "Free Vs Paid",
        "User asks how the free and paid versions differ.",
    ),
    (
        "how do i contact a real person in support?",
        "Medium",
        "Contacting Support",
        "User asks how to reach a human in support.",
    ),
    (
        "why was i charged {n} dollars this month?",
        "High",
        "Unexplained Charge",
        "User asks about an unexpected {n} dollar charge.",
    ),
    (
        "does {app} have a web version too",
        "Low",
        "Web Version",
        "User asks whether {app} has a web version.",
    ),
    (
        "is {feature} available in canada?",
        "Low",
        "{feature} Availability",
        "User asks whether {feature} is available in Canada.",
    ),
    (
        "what happens to my {data} if i cancel?",
        "Medium",
        "{data} After Cancel",
        "User asks what happens to their {data} after cancelling.",
    ),
    (
        "where do i enter a promo code",
        "Low",
        "Promo Code Entry",
        "User asks where to enter a promo code.",
    ),
    (
        "quick question, can i pause my subscription instead of cancelling it?",
        "Low",
        "Pause Subscription",
        "User asks whether a subscription can be paused.",
    ),
    (
        "how do i switch the language to spanish?",
        "Low",
        "Language Settings",
        "User asks how to change the app language.",
    ),
)

QUESTION_SHORT: tuple[Core, ...] = (
    ("how to logout?", "Low", "Logging Out", "User asks how to log out."),
    ("is this free?", "Low", "Pricing", "User asks whether the app is free."),
    ("how do i {action}", "Low", "{action_topic}", "User asks how to {action}."),
    ("where is {feature}?", "Low", "{feature} Location", "User asks where {feature} is."),
    ("does it need internet?", "Low", "Internet Requirement", "User asks if it needs internet."),
    ("any student discount?", "Low", "Student Discount", "User asks about a student discount."),
)

OTHER: tuple[Core, ...] = (
    (
        "my friend told me to download this so here i am",
        "Low",
        "New User",
        "User downloaded the app on a friend's suggestion.",
    ),
    (
        "downloaded it for a school project",
        "Low",
        "School Project",
        "User installed the app for a school project.",
    ),
    (
        "just installed it, will review later",
        "Low",
        "Review Pending",
        "User just installed the app and will review later.",
    ),
    (
        "rating this so the popup stops asking me",
        "Low",
        "Rating Prompt",
        "User left a rating to stop the prompt.",
    ),
    ("hello from brazil", "Low", "Greeting", "User sends a greeting from Brazil."),
    (
        "anyone else here from the youtube ad?",
        "Low",
        "Ad Referral",
        "User asks if others came from an ad.",
    ),
    (
        "the weather is really nice today",
        "Low",
        "Off-Topic Weather",
        "User comments on the weather, unrelated to the app.",
    ),
    (
        "my cat walked across my phone and somehow left this review",
        "Low",
        "Accidental Review",
        "User says the review was left accidentally by a cat.",
    ),
    (
        "follow me on instagram for daily memes",
        "Medium",
        "Self Promotion",
        "User posts self-promotion unrelated to the app.",
    ),
    (
        "wrong app, i meant to download something else",
        "Low",
        "Wrong App",
        "User downloaded the wrong app.",
    ),
    (
        "this is my first review ever",
        "Low",
        "First Review",
        "User says this is their first review.",
    ),
    ("it's an app", "Low", "Neutral Comment", "User leaves a neutral comment."),
    (
        "why is everyone in these reviews so angry lol",
        "Low",
        "Reviews Comment",
        "User comments on other reviews.",
    ),
    (
        "leaving a review for the giveaway",
        "Low",
        "Giveaway Entry",
        "User leaves a review to enter a giveaway.",
    ),
    ("nice icon", "Low", "App Icon", "User comments on the app icon."),
    (
        "i use it sometimes i guess",
        "Low",
        "Occasional Use",
        "User says they use the app occasionally.",
    ),
    (
        "haven't really tried it yet",
        "Low",
        "Not Yet Used",
        "User has not tried the app yet.",
    ),
    ("it is what it is", "Low", "Neutral Comment", "User leaves a neutral comment."),
    (
        "three stars just because",
        "Low",
        "Unexplained Rating",
        "User gives three stars without explanation.",
    ),
    (
        "saw the ceo on tv last night talking about something else entirely",
        "Low",
        "Company News",
        "User mentions seeing the CEO on TV.",
    ),
    (
        "writing this review for a class assignment about app stores",
        "Low",
        "Class Assignment",
        "User writes the review for a class assignment.",
    ),
    (
        "free gems at gemz4free dot net, no survey",
        "Medium",
        "Spam Link",
        "Review contains a spam link.",
    ),
    (
        "{app} is an app for {purpose}",
        "Low",
        "App Description",
        "User describes what {app} is for.",
    ),
    (
        "my grandson set this up for me, not sure what it does yet",
        "Low",
        "New User",
        "User's grandson installed the app for them.",
    ),
    (
        "no opinion really, it's fine i guess",
        "Low",
        "Neutral Opinion",
        "User has no strong opinion about the app.",
    ),
    (
        "does anyone want to be friends? add me",
        "Low",
        "Social Request",
        "User asks other reviewers to be friends.",
    ),
    (
        "the reviews here are all bots anyway",
        "Low",
        "Reviews Comment",
        "User claims the reviews are written by bots.",
    ),
    (
        "i don't have an opinion, my phone made me rate it",
        "Low",
        "Forced Rating",
        "User rated only because prompted.",
    ),
    (
        "happy new year everyone",
        "Low",
        "Greeting",
        "User wishes everyone a happy new year.",
    ),
    (
        "i work at a competitor, just checking out what you guys do",
        "Low",
        "Competitor Visit",
        "User from a competitor is looking around.",
    ),
    (
        "same as every other {kind} app out there",
        "Low",
        "Generic App",
        "User finds the app similar to other {kind} apps.",
    ),
    (
        "deleted it to free up space, nothing wrong with it",
        "Low",
        "Uninstalled For Space",
        "User uninstalled the app to free up storage.",
    ),
    (
        "my phone is getting old, might get a new one soon",
        "Low",
        "Off-Topic Phone",
        "User talks about their phone, not the app.",
    ),
    (
        "test review please ignore",
        "Low",
        "Test Review",
        "Review is a test and can be ignored.",
    ),
    (
        "earn 500 a day from home, link in bio",
        "Medium",
        "Spam",
        "Review is spam advertising.",
    ),
)

OTHER_SHORT: tuple[Core, ...] = (
    ("just testing this", "Low", "Test Review", "Review is a test."),
    ("first review ever", "Low", "First Review", "User's first review."),
    ("ok i guess", "Low", "Neutral Comment", "User leaves a neutral comment."),
    ("no comment here", "Low", "Neutral Comment", "User has no comment."),
    ("asdf asdf jkl", "Low", "Gibberish", "Review is gibberish."),
    ("meh it exists", "Low", "Neutral Comment", "User leaves a neutral comment."),
    ("hi hi hi", "Low", "Greeting", "User says hi."),
)

# Second batch of cores: other wordings, so the model does not lean on one phrasing per idea.
BUG_MORE: tuple[Core, ...] = (
    (
        "the {screen} won't scroll past the first few items",
        "Low",
        "{screen} Scrolling",
        "User cannot scroll past the first items on the {screen}.",
    ),
    (
        "everything switched to the wrong language after {version}",
        "Medium",
        "Wrong Language",
        "User reports the interface switched language after {version}.",
    ),
    (
        "it doesn't show my current location anymore",
        "Medium",
        "Location Not Updating",
        "User reports their current location no longer shows.",
    ),
    (
        "push notifications stopped completely after {version}",
        "Medium",
        "Notifications Stopped",
        "User reports notifications stopped after {version}.",
    ),
    (
        "when i hit send nothing happens, the spinner just sits there",
        "High",
        "Send Not Working",
        "User reports nothing happens when pressing send.",
    ),
    (
        "blank white screen right after the splash logo, can't get past it",
        "Critical",
        "Blank Screen On Start",
        "User is stuck on a blank screen after the splash logo.",
    ),
    (
        "it randomly restarts while i'm in the middle of using it",
        "High",
        "Random Restarts",
        "User reports the app restarting mid-use.",
    ),
    (
        "there's a {purchase} in my history that i never made",
        "High",
        "Unknown {purchase}",
        "User sees a {purchase} in their history they never made.",
    ),
    (
        "audio and video are out of sync",
        "Medium",
        "Audio Video Sync",
        "User reports audio and video out of sync.",
    ),
    (
        "images don't load, just grey boxes everywhere",
        "Medium",
        "Images Not Loading",
        "User reports images not loading.",
    ),
    (
        "can't {action} anymore, the button is greyed out",
        "High",
        "{action_topic} Disabled",
        "User cannot {action} because the button is disabled.",
    ),
    (
        "it logged me into a stranger's account!!",
        "Critical",
        "Wrong Account Login",
        "User was logged into someone else's account.",
    ),
    (
        "the {feature} setting resets itself every time i restart",
        "Low",
        "{feature} Setting Resets",
        "User reports the {feature} setting resetting on restart.",
    ),
    (
        "the app thinks i'm offline when i'm connected",
        "High",
        "False Offline Status",
        "User reports the app wrongly showing offline.",
    ),
    (
        "numbers on the {screen} don't add up, the total is wrong",
        "High",
        "Wrong Totals",
        "User reports wrong totals on the {screen}.",
    ),
    (
        "the page jumps back to the top every time something loads",
        "Low",
        "Scroll Jumping",
        "User reports the page jumping to the top.",
    ),
    (
        "ever since {version} my {data} won't load at all",
        "High",
        "{data} Not Loading",
        "User's {data} no longer loads since {version}.",
    ),
    (
        "the app closes itself as soon as i {action}",
        "Critical",
        "{action_topic} Crash",
        "User reports the app closing when they {action}.",
    ),
)
BUG_SHORT_MORE: tuple[Core, ...] = (
    ("doesn't load anymore", "High", "Not Loading", "User says the app no longer loads."),
    (
        "stuck on the loading screen",
        "High",
        "Stuck Loading",
        "User is stuck on the loading screen.",
    ),
    ("keeps signing me out", "Medium", "Random Logouts", "User keeps being signed out."),
    (
        "{feature} broken after update",
        "High",
        "Broken {feature}",
        "User reports {feature} broke after an update.",
    ),
)
FEATURE_MORE: tuple[Core, ...] = (
    ("how about {wish}?", "Low", "{wish}", "User suggests {wish}."),
    ("consider adding {wish}", "Low", "{wish}", "User asks the team to consider {wish}."),
    (
        "it should let you {capability}",
        "Low",
        "{capability}",
        "User thinks the app should let users {capability}.",
    ),
    ("one feature i'd love: {wish}", "Low", "{wish}", "User would love {wish}."),
    (
        "{wish} would be a game changer",
        "Low",
        "{wish}",
        "User says {wish} would be a game changer.",
    ),
    (
        "you guys should really add {wish}",
        "Medium",
        "{wish}",
        "User strongly suggests adding {wish}.",
    ),
    ("can we get {wish}", "Low", "{wish}", "User asks for {wish}."),
    (
        "any plans for {wish}? i'd use it daily",
        "Low",
        "{wish}",
        "User asks for {wish} and would use it daily.",
    ),
    (
        "support for {integration} please",
        "Low",
        "{integration} Support",
        "User requests {integration} support.",
    ),
    (
        "make it possible to {capability} right from the {screen}",
        "Low",
        "{capability}",
        "User wants to {capability} from the {screen}.",
    ),
    (
        "offer a cheaper plan without all the extras",
        "Low",
        "Cheaper Plan",
        "User requests a cheaper plan with fewer extras.",
    ),
    (
        "a short tutorial for new users would help a lot",
        "Low",
        "New User Tutorial",
        "User suggests a tutorial for new users.",
    ),
    (
        "requesting {wish} for the next release",
        "Low",
        "{wish}",
        "User requests {wish} for the next release.",
    ),
    (
        "if you added {wish} i'd never use another app",
        "Low",
        "{wish}",
        "User says {wish} would make them loyal.",
    ),
)
FEATURE_SHORT_MORE: tuple[Core, ...] = (
    ("needs {wish}", "Low", "{wish}", "User says the app needs {wish}."),
    (
        "more {feature} options please",
        "Low",
        "More {feature} Options",
        "User wants more {feature} options.",
    ),
    (
        "add {integration} support",
        "Low",
        "{integration} Support",
        "User requests {integration} support.",
    ),
)
COMPLAINT_MORE: tuple[Core, ...] = (
    (
        "way overpriced for such a basic app",
        "Medium",
        "Overpriced",
        "User feels the app is overpriced.",
    ),
    (
        "the new colors are awful, everything looks washed out",
        "Low",
        "New Colors",
        "User dislikes the new color scheme.",
    ),
    (
        "they changed the font and now it's hard to read",
        "Low",
        "Font Change",
        "User dislikes the new font.",
    ),
    (
        "support keeps sending me copy paste answers that don't help",
        "Medium",
        "Canned Support Replies",
        "User complains about unhelpful canned support replies.",
    ),
    ("i feel completely ripped off", "Medium", "Ripped Off", "User feels ripped off."),
    (
        "the app tracks everything i do, no thanks",
        "High",
        "Invasive Tracking",
        "User objects to invasive tracking.",
    ),
    (
        "the monthly price doubled overnight with no notice",
        "Medium",
        "Price Doubled",
        "User complains the price doubled without notice.",
    ),
    (
        "they got rid of the free tier",
        "Medium",
        "Free Tier Removed",
        "User is unhappy the free tier was removed.",
    ),
    (
        "the rewards program is a joke now, points are worth nothing",
        "Low",
        "Rewards Program",
        "User complains the rewards program lost value.",
    ),
    (
        "what a downgrade, {competitor} was far better",
        "Medium",
        "Downgrade",
        "User considers the app a downgrade.",
    ),
    (
        "the new terms say they can use my photos?? unacceptable",
        "High",
        "Terms Of Service",
        "User objects to new terms about their photos.",
    ),
    (
        "they never keep their promises, the {feature} they announced still isn't here",
        "Low",
        "Broken Promises",
        "User complains about undelivered announced features.",
    ),
    (
        "i was treated rudely by the support agent",
        "High",
        "Rude Support",
        "User complains about a rude support agent.",
    ),
    (
        "every month something else becomes paid only",
        "Medium",
        "Creeping Paywall",
        "User complains features keep moving behind payment.",
    ),
)
COMPLAINT_SHORT_MORE: tuple[Core, ...] = (
    ("overpriced and underwhelming", "Medium", "Poor Value", "User finds the app overpriced."),
    ("so many ads ugh", "Medium", "Excessive Ads", "User complains about ads."),
    ("not impressed at all", "Low", "Disappointing", "User is not impressed."),
)
PRAISE_MORE: tuple[Core, ...] = (
    (
        "huge thanks to the developers, you nailed it",
        "Low",
        "Developer Thanks",
        "User thanks the developers.",
    ),
    (
        "well done, this is how apps should be made",
        "Low",
        "Well Made",
        "User praises how well the app is made.",
    ),
    ("i'm very happy with it", "Low", "Satisfied", "User is very happy with the app."),
    (
        "it's fast, reliable and looks great",
        "Low",
        "Fast And Reliable",
        "User praises speed, reliability and looks.",
    ),
    (
        "does exactly what it says",
        "Low",
        "Works As Described",
        "User says the app does what it promises.",
    ),
    (
        "incredible value for a free app",
        "Low",
        "Great Value",
        "User praises the value of the free app.",
    ),
    (
        "the best purchase i've made this year",
        "Low",
        "Best Purchase",
        "User calls the app their best purchase this year.",
    ),
    (
        "everything about {feature} is thoughtfully done",
        "Low",
        "{feature}",
        "User praises the thoughtful {feature}.",
    ),
    ("brilliant little app", "Low", "Brilliant App", "User calls the app brilliant."),
    (
        "my favorite app on my phone by far",
        "Low",
        "Favorite App",
        "User says it is their favorite app.",
    ),
    (
        "helps me so much with {purpose}",
        "Low",
        "{purpose}",
        "User says the app helps a lot with {purpose}.",
    ),
    (
        "{app} made {purpose} actually enjoyable",
        "Low",
        "{purpose}",
        "User says {app} made {purpose} enjoyable.",
    ),
)
PRAISE_SHORT_MORE: tuple[Core, ...] = (
    ("excellent app!", "Low", "Overall Experience", "User calls the app excellent."),
    ("well done devs", "Low", "Developer Thanks", "User praises the developers."),
    ("so so good", "Low", "Overall Experience", "User loves the app."),
    ("really helpful app", "Low", "Helpful App", "User finds the app helpful."),
)
QUESTION_MORE: tuple[Core, ...] = (
    (
        "when does the monthly plan renew?",
        "Medium",
        "Renewal Date",
        "User asks when the monthly plan renews.",
    ),
    (
        "which plan should i pick if i only use {feature}?",
        "Low",
        "Plan Choice",
        "User asks which plan fits using only {feature}.",
    ),
    (
        "who do i contact about a wrong charge?",
        "Medium",
        "Wrong Charge Contact",
        "User asks who to contact about a wrong charge.",
    ),
    (
        "when will the {device} version be ready?",
        "Low",
        "{device} Version",
        "User asks when a {device} version is coming.",
    ),
    (
        "does {feature} cost extra?",
        "Low",
        "{feature} Cost",
        "User asks whether {feature} costs extra.",
    ),
    (
        "what's the maximum file size i can upload?",
        "Low",
        "Upload Size Limit",
        "User asks about the upload size limit.",
    ),
    (
        "how do i know if my {purchase} went through?",
        "Medium",
        "{purchase} Status",
        "User asks how to confirm their {purchase} went through.",
    ),
    (
        "am i able to use my account in another country?",
        "Low",
        "Use Abroad",
        "User asks whether the account works abroad.",
    ),
    (
        "can someone explain how {feature} works?",
        "Low",
        "{feature} Explanation",
        "User asks how {feature} works.",
    ),
    (
        "what do i do if i forgot which email i signed up with?",
        "Medium",
        "Forgotten Email",
        "User asks what to do after forgetting their sign-up email.",
    ),
    (
        "is the data stored on my phone or in the cloud?",
        "Low",
        "Data Storage",
        "User asks where their data is stored.",
    ),
    (
        "what does the premium tier actually add?",
        "Low",
        "Premium Benefits",
        "User asks what premium adds.",
    ),
)
QUESTION_SHORT_MORE: tuple[Core, ...] = (
    ("what does premium include?", "Low", "Premium Benefits", "User asks what premium includes."),
    ("how do refunds work?", "Medium", "Refunds", "User asks how refunds work."),
    ("which plan is best?", "Low", "Plan Choice", "User asks which plan is best."),
)
OTHER_MORE: tuple[Core, ...] = (
    (
        "my brother made me write this",
        "Low",
        "Prompted Review",
        "User was asked by their brother to write a review.",
    ),
    ("i have nothing to add", "Low", "Neutral Comment", "User has nothing to add."),
    (
        "installed this morning, no thoughts yet",
        "Low",
        "Review Pending",
        "User installed the app recently and has no opinion yet.",
    ),
    ("random review lol", "Low", "Random Review", "User leaves a random review."),
    ("greetings from the airport", "Low", "Greeting", "User sends greetings from the airport."),
    (
        "listening to music while i write this",
        "Low",
        "Off-Topic",
        "User mentions listening to music.",
    ),
    ("it's raining here again", "Low", "Off-Topic Weather", "User comments on the weather."),
    (
        "this review is from my sister's account",
        "Low",
        "Shared Account",
        "User says the review is from their sister's account.",
    ),
    ("just passing by", "Low", "Passing By", "User is just passing by."),
    ("i'm bored so here's a review", "Low", "Bored Review", "User writes a review out of boredom."),
    ("too early to tell", "Low", "Too Early", "User says it is too early to judge."),
    ("can't say much yet", "Low", "Too Early", "User cannot say much yet."),
    (
        "the number 7 is my lucky number",
        "Low",
        "Off-Topic",
        "User writes something unrelated to the app.",
    ),
    ("whoever reads this have a nice day", "Low", "Greeting", "User wishes readers a nice day."),
)
OTHER_SHORT_MORE: tuple[Core, ...] = (
    ("nothing to add", "Low", "Neutral Comment", "User has nothing to add."),
    ("just browsing around", "Low", "Browsing", "User is just browsing."),
    ("no thoughts yet", "Low", "Review Pending", "User has no thoughts yet."),
    ("bored lol ok", "Low", "Bored Review", "User is bored."),
)

CATEGORY_CORES: dict[str, tuple[tuple[Core, ...], tuple[Core, ...]]] = {
    "Bug Report": (BUG + BUG_MORE, BUG_SHORT + BUG_SHORT_MORE),
    "Feature Request": (FEATURE + FEATURE_MORE, FEATURE_SHORT + FEATURE_SHORT_MORE),
    "Complaint": (COMPLAINT + COMPLAINT_MORE, COMPLAINT_SHORT + COMPLAINT_SHORT_MORE),
    "Praise": (PRAISE + PRAISE_MORE, PRAISE_SHORT + PRAISE_SHORT_MORE),
    "Question": (QUESTION + QUESTION_MORE, QUESTION_SHORT + QUESTION_SHORT_MORE),
    "Other": (OTHER + OTHER_MORE, OTHER_SHORT + OTHER_SHORT_MORE),
}

# Lead-ins are joined with a space to the core; sentences end with their own punctuation.
LEAD_INS: dict[str, tuple[str, ...]] = {
    "Bug Report": ("ugh", "ok so", "hey devs,", "heads up:", "update:", "so basically", "help!"),
    "Feature Request": ("hey team,", "small suggestion:", "one thing:", "hi devs,", "so"),
    "Complaint": ("honestly", "seriously,", "ugh", "not gonna lie", "wow.", "sorry but"),
    "Praise": ("wow,", "honestly", "ok", "just wanted to say", "omg", "i have to say"),
    "Question": ("hi,", "quick question:", "hello,", "hey", "so", "um"),
    "Other": ("so", "ok", "hmm", "well", "lol"),
}
CONTEXT: tuple[str, ...] = (
    "been using {app} for {time}.",
    "i use it every day for work.",
    "my whole family uses this app.",
    "i switched from another app last month.",
    "long time user here.",
    "first time writing a review.",
    "i'm on a {device}.",
    "i downloaded {app} for {purpose}.",
    "running {version} on a {device}.",
    "i'm a paying subscriber.",
)
DETAILS: dict[str, tuple[str, ...]] = {
    "Bug Report": (
        "already tried reinstalling.",
        "cleared the cache and restarted my phone, nothing helps.",
        "happens on wifi and on cellular.",
        "i'm on a {device} with the latest version.",
        "it started after {version}.",
        "this is really frustrating because i need it for work.",
        "it happened three times today.",
        "my partner's phone has the same issue.",
        "i sent a report through the app but got no answer.",
        "it worked fine last week.",
    ),
    "Feature Request": (
        "otherwise it's a great app.",
        "thanks for considering it.",
        "i'd happily pay for it.",
        "a lot of people in the forum want this too.",
        "it would make {purpose} so much easier.",
        "the rest is solid.",
        "right now i have to use a second app for that.",
    ),
    "Complaint": (
        "i've been a customer for {time}.",
        "seriously thinking about switching.",
        "cancelling my subscription.",
        "this is not what i signed up for.",
        "really disappointing.",
        "{competitor} was so much better.",
        "do better.",
        "i expected more from {app}.",
    ),
    "Praise": (
        "keep up the good work.",
        "worth every penny.",
        "recommended it to all my friends.",
        "thank you so much.",
        "the team clearly cares.",
        "can't imagine my day without it.",
        "five stars well deserved.",
    ),
    "Question": (
        "thanks in advance.",
        "couldn't find it in the help section.",
        "any help appreciated.",
        "i looked everywhere in settings.",
        "would appreciate a reply.",
        "the faq doesn't say.",
    ),
    "Other": ("anyway.", "that's all.", "bye.", "whatever.", "cheers."),
}
STORIES: dict[str, tuple[str, ...]] = {
    "Bug Report": (
        "i was in the middle of paying for groceries and the whole thing froze, so i had to "
        "dig out cash while the line behind me got longer.",
        "it happened right before a deadline and i had to borrow a coworker's laptop to finish.",
        "support told me to reinstall, which i did twice, and it still happens exactly the same "
        "way every single time.",
        "i sent screenshots to support a week ago and nobody has replied yet.",
        "it was working fine until the update last thursday, nothing else changed on my phone.",
    ),
    "Feature Request": (
        "right now i keep a separate spreadsheet just for this, which is silly when the app "
        "already has all the information.",
        "my friends and i talked about it and we would all use it every day if it existed.",
        "i know it's probably a lot of work but it would make the app feel complete.",
        "the web version sort of does this already so it would be great to have it on mobile.",
    ),
    "Complaint": (
        "when i first downloaded it a few years ago it was simple and free, now every screen "
        "tries to sell me something.",
        "i emailed them three times and called once, and every time i got a different answer "
        "from a different person.",
        "i recommended this to my whole office and now i'm embarrassed that i did.",
        "it feels like the company stopped caring about the people who made it popular.",
    ),
    "Praise": (
        "i've tried probably ten different apps over the years and this is the only one that "
        "stuck.",
        "the little details, like how it remembers where i left off, make a huge difference.",
        "even my dad, who hates technology, figured it out without asking me for help.",
        "whoever is on the design team deserves a raise, everything is where you expect it.",
    ),
    "Question": (
        "i searched the help center and a couple of forums but everything i found was for the "
        "old version of the app.",
        "i'd rather not lose anything, so i want to check before i try it myself.",
        "my sister asked me and i realized i don't actually know the answer.",
        "the settings menu has changed a lot and i can't tell where things went.",
    ),
    "Other": (
        "honestly i just needed something to do while waiting at the dentist's office.",
        "my sister uses this all the time, she says it's fine, i have no idea.",
        "i'm mostly writing this because the app keeps reminding me to leave a review.",
        "not much else to say, my phone is almost out of battery anyway.",
    ),
}
CLOSERS: dict[str, tuple[str, ...]] = {
    "Bug Report": ("please fix", "pls fix asap", "fix this!!", "1 star until it's fixed", "help"),
    "Feature Request": ("thanks!", "please consider it", "pretty please", "would be awesome"),
    "Complaint": ("uninstalling", "1 star", "never again", "do better", "shame on you"),
    "Praise": ("thanks!", "5 stars", "love you guys", "keep it up", "highly recommend"),
    "Question": ("thanks", "thx", "anyone?", "please help", "ty"),
    "Other": ("lol", "ok", "bye", "peace", ":)"),
}
EMOJI: dict[str, tuple[str, ...]] = {
    "Bug Report": ("😡", "😤", "🤬", "😭"),
    "Feature Request": ("🙏", "😊", "💡"),
    "Complaint": ("😡", "👎", "🙄", "😒"),
    "Praise": ("😍", "👍", "❤️", "🔥", "⭐⭐⭐⭐⭐"),
    "Question": ("🤔", "🙂"),
    "Other": ("🤷", "😂", "👋"),
}
INFORMAL: tuple[tuple[str, str], ...] = (
    (r"\byou\b", "u"),
    (r"\byour\b", "ur"),
    (r"\bplease\b", "pls"),
    (r"\bbecause\b", "cuz"),
    (r"\bdoesn't\b", "doesnt"),
    (r"\bcan't\b", "cant"),
    (r"\bwon't\b", "wont"),
    (r"\bi'm\b", "im"),
    (r"\bdon't\b", "dont"),
    (r"\breally\b", "rly"),
    (r"\bthanks\b", "thx"),
    (r"\bit's\b", "its"),
    (r"\bi've\b", "ive"),
    (r"\bthough\b", "tho"),
    (r"\bgoing to\b", "gonna"),
)
SHIFT: dict[str, tuple[str, ...]] = {
    "Critical": ("High",),
    "High": ("Critical", "Medium"),
    "Medium": ("High", "Low"),
    "Low": ("Medium",),
}
JITTER: dict[str, float] = {
    "Bug Report": 0.15,
    "Feature Request": 0.12,
    "Complaint": 0.15,
    "Praise": 0.0,
    "Question": 0.1,
    "Other": 0.05,
}


def _title(phrase: str) -> str:
    words = phrase.split()[:4]
    out = []
    for w in words:
        if w.isupper() or (len(w) > 1 and w[0].islower() and w[1].isupper()):
            out.append(w)  # keep "GPS", "iPad"
        else:
            out.append(w[:1].upper() + w[1:])
    return " ".join(out)


def _slots(rng: random.Random, dom: Domain) -> dict[str, str]:
    action, action_topic = rng.choice(dom.actions)
    feature = rng.choice(dom.features)
    screen = rng.choice(dom.screens)
    data = rng.choice(dom.data)
    wishes = dom.wishes + GENERIC_WISHES[: len(dom.wishes)]
    caps = dom.capabilities + GENERIC_CAPABILITIES
    slots = {
        "app": rng.choice(dom.apps),
        "kind": dom.kind,
        "purpose": dom.purpose,
        "feature": feature,
        "action": action,
        "action_topic": action_topic,
        "screen": screen,
        "data": data,
        "purchase": rng.choice(dom.purchases),
        "wish": rng.choice(wishes),
        "device": rng.choice(DEVICES),
        "version": rng.choice(VERSIONS),
        "time": rng.choice(TIMES),
        "n": str(rng.choice((3, 12, 40, 57, 120, 200, 365))),
        "competitor": rng.choice(COMPETITORS),
        "integration": rng.choice(INTEGRATIONS),
    }
    slots["capability"] = rng.choice(caps).format_map(slots)
    return slots


def _topic(template: str, slots: dict[str, str]) -> str:
    text = template.format_map(slots)
    # capability / wish topics: drop leading articles and filler verbs, keep 1-4 words
    words = [w for w in re.split(r"\s+", text) if w]
    while words and words[0].lower() in {"a", "an", "the", "my", "to"}:
        words = words[1:]
    return _title(" ".join(words)) or "General Feedback"


def _sentence(part: str) -> str:
    part = part.strip()
    if part and part[-1] not in ".!?:,":
        part += "."
    return part


def _join(parts: list[str]) -> str:
    out = ""
    for p in parts:
        if not out:
            out = p
        elif out[-1] in ",:" or out.split()[-1].lower() in {
            "ugh",
            "so",
            "ok",
            "honestly",
            "omg",
            "hey",
            "um",
            "well",
            "hmm",
            "lol",
            "say",
            "basically",
            "lie",
            "but",
        }:
            out = f"{out} {p}"
        else:
            out = f"{_sentence(out)} {p}" if out[-1] not in ".!?" else f"{out} {p}"
    return out


def _sentence_case(text: str) -> str:
    text = re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)
    text = re.sub(r"\bi\b", "I", text)
    return re.sub(r"\bi(['’](m|ve|d|ll))\b", r"I\1", text)


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    for i in rng.sample(idx, k=min(len(idx), rng.choice((1, 1, 2)))):
        w = words[i]
        j = rng.randrange(1, len(w) - 2)
        op = rng.random()
        if op < 0.4:
            w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
        elif op < 0.75:
            w = w[:j] + w[j + 1 :]
        else:
            w = w[:j] + w[j] + w[j:]
        words[i] = w
    return " ".join(words)


def _noise(rng: random.Random, text: str, category: str) -> str:
    if rng.random() < 0.35:
        for pattern, repl in INFORMAL:
            if rng.random() < 0.7:
                text = re.sub(pattern, repl, text)
    if rng.random() < 0.2:
        text = _typo(rng, text)
    r = rng.random()
    if r < 0.4:
        pass  # all lower case, as written
    elif r < 0.05 + 0.4 and category in ("Bug Report", "Complaint"):
        text = text.upper()
    else:
        text = _sentence_case(text)
    r = rng.random()
    if r < 0.15:
        text = re.sub(r"[.,!?:;]", "", text)
    elif r < 0.35:
        text = text.rstrip(".!?")
    elif r < 0.45 and category in ("Bug Report", "Complaint", "Praise"):
        text = text.rstrip(".!?") + rng.choice(("!!", "!!!", "!"))
    if rng.random() < 0.12:
        text = f"{text} {rng.choice(EMOJI[category])}"
    return re.sub(r"\s+", " ", text).strip()


def _urgency(rng: random.Random, base: str, category: str) -> str:
    if rng.random() < JITTER[category]:
        return rng.choice(SHIFT[base])
    return base


def _rating(rng: random.Random, category: str, urgency: str) -> int:
    if category == "Bug Report":
        pool = {"Critical": (1, 1, 2), "High": (1, 2, 2, 3), "Medium": (2, 3, 3), "Low": (3, 4, 4)}
        return rng.choice(pool[urgency])
    table = {
        "Feature Request": (3, 4, 4, 5, 5),
        "Complaint": (1, 1, 1, 2, 2, 3),
        "Praise": (4, 5, 5, 5, 5),
        "Question": (2, 3, 3, 4, 5),
        "Other": (1, 2, 3, 3, 4, 5),
    }
    return rng.choice(table[category])


def make_record(rng: random.Random, category: str) -> dict[str, object]:
    dom = rng.choice(DOMAINS)
    slots = _slots(rng, dom)
    cores, shorts = CATEGORY_CORES[category]
    r = rng.random()
    if r < 0.1:
        core = rng.choice(shorts)
        size = "short"
    else:
        pool = cores + dom.cores.get(category, ())
        core = rng.choice(pool)
        size = "medium" if r < 0.6 else "long" if r < 0.88 else "xl"
    text_t, base_urg, topic_t, summary_t = core
    parts: list[str] = []
    if size != "short":
        if rng.random() < (0.2 if size == "medium" else 0.45):
            parts.append(rng.choice(LEAD_INS[category]))
        if size == "long" and rng.random() < 0.6:
            parts.insert(0, rng.choice(CONTEXT))
        parts.append(text_t)
        if size == "xl":
            if not parts[0].endswith("."):
                parts.insert(0, rng.choice(CONTEXT))
            parts.extend(rng.sample(STORIES[category], k=rng.choice((1, 2, 2))))
        n_details = {"medium": 1, "long": rng.choice((1, 2, 2)), "xl": rng.choice((2, 3))}[size]
        if size != "medium" or rng.random() < 0.35:
            parts.extend(rng.sample(DETAILS[category], k=n_details))
        if rng.random() < (0.25 if size == "medium" else 0.5):
            parts.append(rng.choice(CLOSERS[category]))
    else:
        parts.append(text_t)
    while len(" ".join(parts).split()) > 80 and len(parts) > 2:
        parts.pop(-2)  # drop a detail, keep the core and the closing part
    text = _join([p.format_map(slots) for p in parts])
    text = re.sub(r"\ba (ipad|iphone|android|oneplus)", r"an \1", text)
    text = _noise(rng, text, category)
    urgency = _urgency(rng, base_urg, category)
    summary = re.sub(r"\bmy\b", "their", summary_t.format_map(slots))
    summary = summary[:1].upper() + summary[1:]
    return {
        "text": text,
        "category": category,
        "urgency": urgency,
        "topic": _topic(topic_t, slots),
        "summary": summary,
        "app": slots["app"],
        "rating": _rating(rng, category, urgency),
    }


def generate(seed: int, per_category: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[dict[str, object]] = []
    for category in CATEGORY_CORES:
        # vary the counts a little (roughly balanced, not identical)
        target = per_category + rng.randint(-5, 5)
        got = 0
        tries = 0
        while got < target and tries < target * 50:
            tries += 1
            rec = make_record(rng, category)
            key = re.sub(r"[^a-z0-9 ]", "", str(rec["text"]).lower())
            if key in seen or len(str(rec["text"]).split()) < 3:
                continue
            seen.add(key)
            out.append(rec)
            got += 1
    rng.shuffle(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--per-category", type=int, default=85)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "gateway" / "data" / "seed_reviews.jsonl",
    )
    args = parser.parse_args()
    records = generate(args.seed, args.per_category)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"wrote {len(records)} reviews to {args.out}")


if __name__ == "__main__":
    main()
